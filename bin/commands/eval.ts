import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

// Placeholder until this capability lands; it says so rather than pretending to work.
export const evalCommand: CommandModule = {
  command: 'eval',
  describe: '(eval: not built yet)',
  handler: () => {
    throw new UserError('skd eval is not available in this build yet');
  },
};

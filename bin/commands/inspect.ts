import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

// Placeholder until this capability lands; it says so rather than pretending to work.
export const inspectCommand: CommandModule = {
  command: 'inspect',
  describe: '(inspect: not built yet)',
  handler: () => {
    throw new UserError('skd inspect is not available in this build yet');
  },
};

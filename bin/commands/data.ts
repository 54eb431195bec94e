import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

// Placeholder until this capability lands; it says so rather than pretending to work.
export const dataCommand: CommandModule = {
  command: 'data',
  describe: '(data: not built yet)',
  handler: () => {
    throw new UserError('skd data is not available in this build yet');
  },
};

import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

// Placeholder until this capability lands; it says so rather than pretending to work.
export const exportCommand: CommandModule = {
  command: 'export',
  describe: '(export: not built yet)',
  handler: () => {
    throw new UserError('skd export is not available in this build yet');
  },
};

import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

// Placeholder until this capability lands; it says so rather than pretending to work.
export const webCommand: CommandModule = {
  command: 'web',
  describe: '(web: not built yet)',
  handler: () => {
    throw new UserError('skd web is not available in this build yet');
  },
};

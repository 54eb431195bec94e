import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

// Placeholder until this capability lands; it says so rather than pretending to work.
export const serveCommand: CommandModule = {
  command: 'serve',
  describe: '(serve: not built yet)',
  handler: () => {
    throw new UserError('skd serve is not available in this build yet');
  },
};

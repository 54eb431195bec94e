import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

// Placeholder until this capability lands; it says so rather than pretending to work.
export const demoCommand: CommandModule = {
  command: 'demo',
  describe: '(demo: not built yet)',
  handler: () => {
    throw new UserError('skd demo is not available in this build yet');
  },
};

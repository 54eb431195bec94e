import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

// Placeholder until this capability lands; it says so rather than pretending to work.
export const trainCommand: CommandModule = {
  command: 'train',
  describe: '(train: not built yet)',
  handler: () => {
    throw new UserError('skd train is not available in this build yet');
  },
};

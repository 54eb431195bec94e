import type { CommandModule } from 'yargs';
import { formatOnnxModelInfo } from '../../proto/format.js';
import { readOnnxModelInfo } from '../../proto/read.js';

interface InspectArgs {
  model: string;
  json: boolean;
}

export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect <model>',
  describe: 'Describe an ONNX file: inputs, outputs, opsets, IR version, producer, metadata',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'ONNX file (written by skd export or any other exporter)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the description as JSON' }),
  handler: (args) => {
    const info = readOnnxModelInfo(args.model);
    process.stdout.write(args.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatOnnxModelInfo(info, args.model)}\n`);
  },
};

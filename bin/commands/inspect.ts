import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';
import { isPthPath } from '../../torch/checkpoint.js';
import { checkOnnxModel } from '../../proto/check.js';
import { formatOnnxModelInfo } from '../../proto/format.js';
import { describeOnnxModel, readOnnxModel } from '../../proto/read.js';

interface InspectArgs {
  model: string;
  json: boolean;
  check: boolean;
}

export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect <model>',
  describe: 'Describe an ONNX file (inputs, outputs, opsets, IR version, producer, metadata) or a PyTorch .pth checkpoint',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'ONNX file (written by skd export or any other exporter), or a .pth checkpoint of the reference code' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the description as JSON' })
      .option('check', { type: 'boolean', default: false, describe: 'Also check the graph structure (defined inputs, typed inputs/outputs, opset imports); fail on problems' }),
  handler: async (args) => {
    if (isPthPath(args.model)) {
      const { describePth, formatPthInfo } = await import('../../torch/describe.js');
      const info = describePth(args.model);
      process.stdout.write(args.json ? `${JSON.stringify(info, null, 2)}\n` : `${formatPthInfo(info)}\n`);
      return;
    }
    const model = readOnnxModel(args.model);
    const info = describeOnnxModel(model);
    const problems = args.check ? checkOnnxModel(model) : undefined;
    if (args.json) {
      process.stdout.write(`${JSON.stringify(problems ? { ...info, problems } : info, null, 2)}\n`);
    } else {
      process.stdout.write(`${formatOnnxModelInfo(info, args.model)}\n`);
      if (problems) process.stdout.write(problems.length === 0 ? 'check: no structural problems\n' : `check: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
    }
    if (problems && problems.length > 0) throw new UserError(`${args.model} failed the structural check (${problems.length} problem(s))`);
  },
};

import type { CommandModule } from 'yargs';
import { OUTPUT_NAMES } from '../../export/graph.js';

interface ExportArgs {
  checkpoint: string;
  out: string;
  outputs: string;
  layout: 'nchw' | 'nhwc';
  'bake-normalization': boolean;
  dataset?: string;
  verify: boolean;
  'verify-images': number;
  backend: 'cpu' | 'wasm';
  'allow-non-finite': boolean;
  json: boolean;
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export',
  describe: 'Export a checkpoint to ONNX (batch-norm folded, preprocessing in metadata_props)',
  builder: (y) =>
    y
      .option('checkpoint', { type: 'string', demandOption: true, describe: 'Checkpoint file (skd .safetensors, or a PyTorch .pth of the reference code), or a training output folder (its last generation is used)' })
      .option('out', { type: 'string', demandOption: true, describe: 'ONNX file to write (atomically)' })
      .option('outputs', { type: 'string', default: 'features', describe: `Comma-separated graph outputs among ${OUTPUT_NAMES.join(', ')}; features is always included` })
      .option('layout', { choices: ['nchw', 'nhwc'] as const, default: 'nchw' as const, describe: 'Layout of the images input' })
      .option('bake-normalization', { type: 'boolean', default: false, describe: 'Normalise inside the graph: the input is then pixels / 255' })
      .option('dataset', { type: 'string', describe: "Dataset whose normalisation to record (default: the checkpoint's training dataset)" })
      .option('verify', { type: 'boolean', default: false, describe: 'Compare TensorFlow.js and ONNX Runtime outputs; fail above 1e-4 relative' })
      .option('verify-images', { type: 'number', default: 16, describe: 'Real dataset images in the check (besides 8 random ones); 0 for random only' })
      .option('backend', { choices: ['wasm', 'cpu'] as const, default: 'wasm' as const, describe: 'TensorFlow.js backend for --verify' })
      .option('allow-non-finite', { type: 'boolean', default: false, describe: 'Export weights that hold NaN or infinities (refused otherwise)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON summary on stdout' }),
  handler: async (args) => {
    // Loaded here so that other commands start without TensorFlow.js and ONNX Runtime.
    const { exportCheckpoint } = await import('../../export/from-checkpoint.js');
    const result = await exportCheckpoint({
      checkpoint: args.checkpoint,
      out: args.out,
      outputs: args.outputs.split(','),
      layout: args.layout,
      bakeNormalization: args['bake-normalization'],
      dataset: args.dataset,
      verify: args.verify,
      verifyImages: args['verify-images'],
      backend: args.backend,
      allowNonFinite: args['allow-non-finite'],
      log: (line) => process.stderr.write(`${line}\n`),
    });
    if (args.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  },
};

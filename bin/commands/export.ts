import type { CommandModule } from 'yargs';
import { OUTPUT_NAMES } from '../../export/graph.js';
import { TRITON_INSTANCE_KINDS, type TritonInstanceKind } from '../../export/triton.js';

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
  triton?: string;
  'triton-name'?: string;
  'triton-max-batch': number;
  'triton-kind': TritonInstanceKind;
  'triton-instances': number;
  'triton-queue-delay-us': number;
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
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON summary on stdout' })
      .option('triton', { type: 'string', describe: 'Also write a Triton model repository entry: DIR/NAME/config.pbtxt and DIR/NAME/1/model.onnx' })
      .option('triton-name', { type: 'string', describe: 'Model name in the Triton repository (default: the --out file name without .onnx)' })
      .option('triton-max-batch', { type: 'number', default: 64, describe: 'Triton max_batch_size' })
      .option('triton-kind', { choices: TRITON_INSTANCE_KINDS, default: 'gpu' as TritonInstanceKind, describe: 'Where Triton runs the instances (KIND_GPU, KIND_CPU, KIND_AUTO)' })
      .option('triton-instances', { type: 'number', default: 1, describe: 'Triton instances per device' })
      .option('triton-queue-delay-us', { type: 'number', default: 500, describe: 'Triton dynamic batching: longest wait for a batch to fill (microseconds)' }),
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
    let triton;
    if (args.triton !== undefined) {
      const { writeTritonRepository } = await import('../../export/triton.js');
      const { modelNameFromPath } = await import('../../data/model-name.js');
      triton = writeTritonRepository(args.out, args.triton, {
        name: args['triton-name'] ?? modelNameFromPath(args.out), maxBatchSize: args['triton-max-batch'], instanceKind: args['triton-kind'],
        instanceCount: args['triton-instances'], queueDelayUs: args['triton-queue-delay-us'],
      });
      process.stderr.write(`wrote the Triton model ${triton.config} and ${triton.model}\n`);
    }
    if (args.json) process.stdout.write(`${JSON.stringify({ ...result, ...(triton ? { triton } : {}) }, null, 2)}\n`);
  },
};

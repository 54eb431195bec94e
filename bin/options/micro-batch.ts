/** `--micro-batch auto|N` of `skd train` and `skd demo`: images per micro-batch of a step (train/ort/micro-batch.ts). */
import type { Argv } from 'yargs';
import { UserError } from '../../data/errors.js';

export interface MicroBatchArgs {
  'micro-batch': string;
}

export function microBatchOptions<T>(y: Argv<T>): Argv<T & MicroBatchArgs> {
  return y.option('micro-batch', {
    alias: 'micro_batch', type: 'string', default: 'auto',
    describe: 'ONNX Runtime engine: images per micro-batch, a divisor of the batch size; gradients are accumulated over the micro-batches of a step ' +
      '(batch-norm statistics are then per micro-batch). auto: the whole batch unless its step would not fit in memory',
  }) as unknown as Argv<T & MicroBatchArgs>;
}

/** undefined for auto, else the size (whether it divides the batch size is checked with the configuration). */
export function microBatchOf(args: MicroBatchArgs): number | undefined {
  const text = String(args['micro-batch']).trim();
  if (text === 'auto') return undefined;
  const n = Number(text);
  if (text === '' || !Number.isInteger(n) || n < 1) throw new UserError(`--micro-batch must be auto or an integer >= 1, got "${args['micro-batch']}"`);
  return n;
}

/**
 * The flags that describe an ONNX graph without skd metadata (`skd eval`, `skd serve`): input layout and size,
 * normalisation, and the feature output. Each wins over what the graph's metadata says.
 */
import type { Argv } from 'yargs';
import { UserError } from '../../data/errors.js';
import type { Preprocessing } from '../../infer/session.js';
import { parseTriple, positiveInt } from './parse.js';

export interface ForeignGraphArgs {
  layout?: string;
  size?: number;
  mean?: string;
  std?: string;
  output?: string;
}

export function foreignGraphOptions<T>(y: Argv<T>): Argv<T & ForeignGraphArgs> {
  return y
    .option('layout', { type: 'string', describe: 'foreign graph: input layout, nchw or nhwc' })
    .option('size', { type: 'number', describe: 'foreign graph: input image height = width' })
    .option('mean', { type: 'string', describe: 'foreign graph: per-channel mean on the 0-1 scale, "0.5071,0.4867,0.4408" (default: the metadata\'s; skd eval then uses the dataset\'s)' })
    .option('std', { type: 'string', describe: 'foreign graph: per-channel std on the 0-1 scale, "r,g,b"' })
    .option('output', { type: 'string', describe: 'name of the feature output (default: features, or the only output)' }) as unknown as Argv<T & ForeignGraphArgs>;
}

/** The preprocessing overrides the flags give; checked before any model is loaded. */
export function foreignGraphOverrides(args: ForeignGraphArgs): Partial<Preprocessing> {
  const o: Partial<Preprocessing> = {};
  if (args.layout !== undefined) {
    if (args.layout !== 'nchw' && args.layout !== 'nhwc') throw new UserError(`--layout must be nchw or nhwc, got "${args.layout}"`);
    o.layout = args.layout;
  }
  if (args.size !== undefined) o.size = positiveInt('size', args.size);
  const mean = parseTriple('mean', args.mean);
  const std = parseTriple('std', args.std);
  if (std?.some((v) => !(v > 0))) throw new UserError(`--std values must be positive, got "${args.std}"`);
  if (mean) o.mean = mean;
  if (std) o.std = std;
  return o;
}

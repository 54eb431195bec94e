/** Where ONNX Runtime runs a backbone (`skd eval`, `skd serve`): the execution provider and its threads. */
import type { Argv } from 'yargs';
import { UserError } from '../../data/errors.js';
import { DEVICES, type Device } from '../../infer/session.js';
import { positiveInt } from './parse.js';

export interface RuntimeArgs {
  device: string;
  threads?: number;
}

export function runtimeOptions<T>(y: Argv<T>): Argv<T & RuntimeArgs> {
  return y
    .option('device', { type: 'string', default: 'auto', describe: `execution provider: ${DEVICES.join(', ')} (auto: CUDA if installed, else CPU)` })
    .option('threads', { type: 'number', describe: 'ONNX Runtime intra-op threads (default: one per core)' }) as unknown as Argv<T & RuntimeArgs>;
}

/** The checked device and thread count. */
export function runtimeOf(args: RuntimeArgs): { device: Device; threads?: number } {
  if (!(DEVICES as readonly string[]).includes(args.device)) throw new UserError(`unknown device "${args.device}" (expected one of ${DEVICES.join(', ')})`);
  if (args.threads !== undefined) positiveInt('threads', args.threads, 0);
  return { device: args.device as Device, threads: args.threads };
}

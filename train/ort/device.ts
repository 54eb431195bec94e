/**
 * Execution-provider choice for the training sessions, with the evaluator's rules: a device the user asked
 * for that cannot start falls back to CPU with one line saying so; 'auto' says nothing, and tries CUDA only
 * when its provider library is installed (onnxruntime-node bundles CPU and WebGPU; CUDA comes with
 * `ONNXRUNTIME_NODE_INSTALL=cuda12 npm install`), so a CPU machine never sees a CUDA failure.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { UserError } from '../../data/errors.js';
import { TRAIN_DEVICES, type TrainDevice } from '../engine.js';

export type Provider = 'cpu' | 'webgpu' | 'cuda';

/** Whether onnxruntime-node's CUDA provider library is present next to its binding. */
export function cudaProviderInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = join(root, 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(join(dir, 'libonnxruntime_providers_cuda.so')) || existsSync(join(dir, 'onnxruntime_providers_cuda.dll'));
  } catch {
    return false;
  }
}

export function sessionOptions(provider: Provider, threads: number | undefined): ort.InferenceSession.SessionOptions {
  ort.env.logLevel = 'fatal';
  return {
    logSeverityLevel: 4,
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    interOpNumThreads: 1,
    intraOpNumThreads: threads !== undefined && threads > 0 ? Math.floor(threads) : availableParallelism(),
    // Between steps the engine runs JavaScript (augmentation, masks, SGD): spinning threads would take its core.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** Failure of one provider, as the first line of onnxruntime's message. */
function reason(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0].trim();
}

/**
 * Creates the sessions of one engine on the first provider that works for `device`. `create` builds every
 * session the engine needs with the given options, so that all of them run on the same provider.
 */
export async function onDevice<T>(
  device: TrainDevice, threads: number | undefined, log: (line: string) => void, create: (opts: ort.InferenceSession.SessionOptions, provider: Provider) => Promise<T>,
): Promise<{ value: T; provider: Provider }> {
  if (!TRAIN_DEVICES.includes(device)) throw new UserError(`unknown device '${String(device)}': expected one of ${TRAIN_DEVICES.join(', ')}`);
  const wanted: Provider | undefined = device === 'auto' ? (cudaProviderInstalled() ? 'cuda' : undefined) : device === 'cpu' ? undefined : device;
  if (wanted) {
    // onnxruntime prints a failed provider load as an error line of its own (unless its logging, set up by the
    // process's first session, is at 'fatal', as skd sets it); the outcome reaches us as an exception.
    ort.env.logLevel = 'fatal';
    try {
      return { value: await create(sessionOptions(wanted, threads), wanted), provider: wanted };
    } catch (err) {
      if (device !== 'auto') log(`skd: the ${wanted === 'cuda' ? 'CUDA' : 'WebGPU'} execution provider is not available (${reason(err)}); training on CPU`);
    }
  }
  return { value: await create(sessionOptions('cpu', threads), 'cpu'), provider: 'cpu' };
}

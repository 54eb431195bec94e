/** Session options and provider choice of the training sessions (the rule is infer/execution-provider.ts's). */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { UserError } from '../../data/errors.js';
import { onProvider, type Provider } from '../../infer/execution-provider.js';
import { TRAIN_DEVICES, type TrainDevice } from '../engine.js';

export type { Provider } from '../../infer/execution-provider.js';

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

/**
 * Creates the sessions of one engine on the first provider that works for `device` (infer/execution-provider.ts's
 * rule). `create` builds every session the engine needs with the given options, so all run on the same provider.
 */
export async function onDevice<T>(
  device: TrainDevice, threads: number | undefined, log: (line: string) => void, create: (opts: ort.InferenceSession.SessionOptions, provider: Provider) => Promise<T>,
): Promise<{ value: T; provider: Provider }> {
  if (!TRAIN_DEVICES.includes(device)) throw new UserError(`unknown device '${String(device)}': expected one of ${TRAIN_DEVICES.join(', ')}`);
  return onProvider(device, 'training', log, (provider) => create(sessionOptions(provider, threads), provider));
}

/**
 * Which ONNX Runtime execution provider a session runs on, with one rule for the evaluator, the server and the
 * training engine: 'auto' tries CUDA only when onnxruntime-node's CUDA provider library is installed (the npm
 * package bundles CPU and WebGPU; CUDA comes with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm install`) and says
 * nothing either way; a provider the user asked for that cannot start falls back to CPU with one line, once
 * per process and provider.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

export type Provider = 'cpu' | 'webgpu' | 'cuda';
export type DeviceRequest = 'auto' | Provider;

const PROVIDER_NAMES: Record<Provider, string> = { cpu: 'CPU', webgpu: 'WebGPU', cuda: 'CUDA' };

export function providerName(provider: Provider): string {
  return PROVIDER_NAMES[provider];
}

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

const fallbackSaid = new Set<Provider>();

/** Forgets which fallbacks were said (tests). */
export function resetFallbackNotices(): void {
  fallbackSaid.clear();
}

/**
 * Runs `create` on the first provider that works for `device` and returns what it made and where. `doing` names
 * the work in the fallback line ("training", "running").
 */
export async function onProvider<T>(
  device: DeviceRequest, doing: string, log: (line: string) => void, create: (provider: Provider) => Promise<T>,
): Promise<{ value: T; provider: Provider }> {
  const wanted: Provider | undefined = device === 'auto' ? (cudaProviderInstalled() ? 'cuda' : undefined) : device === 'cpu' ? undefined : device;
  if (wanted) {
    // onnxruntime prints a failed provider load as an error line of its own unless its logging is at 'fatal';
    // the outcome reaches us as an exception.
    ort.env.logLevel = 'fatal';
    try {
      return { value: await create(wanted), provider: wanted };
    } catch (err) {
      if (device !== 'auto' && !fallbackSaid.has(wanted)) {
        fallbackSaid.add(wanted);
        log(`skd: the ${providerName(wanted)} execution provider is not available (${firstLine(err)}); ${doing} on CPU`);
      }
    }
  }
  return { value: await create('cpu'), provider: 'cpu' };
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!.trim();
}

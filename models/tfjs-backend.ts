/**
 * TensorFlow.js backend selection. The native TensorFlow bindings (@tensorflow/tfjs-node-gpu,
 * @tensorflow/tfjs-node) are optional: they are imported dynamically, only when chosen or probed by
 * 'auto', so that importing this module never loads them. The WebAssembly backend is the default.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../data/errors.js';
import { backendHasNativeConvGrad } from './conv-grad.js';
import { registerGradients } from './tfjs-gradients.js';
import { createThreadedWasmBackend, MAX_WASM_THREADS } from './tfjs-wasm-threads.js';
import { checkTfjsVersion } from './tfjs-version.js';
import { useCorrectWasmMaxPoolGrad } from './tfjs-wasm-maxpool-grad.js';

export type BackendChoice = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface SelectBackendOptions {
  /**
   * XNNPACK threads of the wasm backend. Default: all cores, at most 8. 1 runs the single-threaded SIMD
   * binary; more run the threaded SIMD binary (models/tfjs-wasm-threads.ts), or 1 thread if it cannot start.
   */
  threads?: number;
  /** Receives the one line saying which backend runs. Default: stderr. */
  log?: (line: string) => void;
}

export interface SelectedBackend {
  /** tf.getBackend() after selection: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  description: string;
}

const NATIVE_PACKAGES = { 'tensorflow-gpu': '@tensorflow/tfjs-node-gpu', tensorflow: '@tensorflow/tfjs-node' } as const;

async function tryImport(pkg: string): Promise<Error | null> {
  try {
    // A variable specifier keeps the compiler and bundlers from resolving the optional package.
    const specifier: string = pkg;
    await import(specifier);
    return null;
  } catch (err) {
    return err as Error;
  }
}

async function activateNative(kind: 'tensorflow-gpu' | 'tensorflow'): Promise<Error | null> {
  const err = await tryImport(NATIVE_PACKAGES[kind]);
  if (err) return err;
  if (!(await tf.setBackend('tensorflow'))) return new Error('the tensorflow backend failed to initialise');
  await tf.ready();
  return null;
}

/** The priority @tensorflow/tfjs-backend-wasm registers 'wasm' with. */
const WASM_PRIORITY = 2;
type BackendFactory = () => tf.KernelBackend | Promise<tf.KernelBackend>;
/** The package's own 'wasm' factory (single-threaded SIMD binary in Node), kept to return to it. */
let packageWasmFactory: BackendFactory | null = null;
/** XNNPACK threads of the backend registered as 'wasm': 1 is the package's own factory. */
let registeredWasmThreads = 1;

function registerWasmFactory(factory: BackendFactory, threads: number): void {
  if (tf.findBackendFactory('wasm')) tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory, WASM_PRIORITY);
  registeredWasmThreads = threads;
}

async function activateWasm(threads: number | undefined): Promise<{ description: string }> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  packageWasmFactory ??= tf.findBackendFactory('wasm');
  const wanted = Math.max(1, Math.floor(threads ?? (await import('node:os')).availableParallelism()));
  const target = Math.min(wanted, MAX_WASM_THREADS);
  let note = threads !== undefined && wanted > target ? ` (${wanted} requested; the threaded binary runs at most ${MAX_WASM_THREADS})` : '';
  if (target > 1 && target !== registeredWasmThreads) {
    checkTfjsVersion('@tensorflow/tfjs-backend-wasm', 'it starts the threaded SIMD binary from wasm-out/ itself');
    try {
      if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) throw new Error('this runtime has no WebAssembly SIMD');
      const backend = await createThreadedWasmBackend(wasm, target);
      registerWasmFactory(() => backend, target);
    } catch (err) {
      note = ` (threaded WebAssembly failed, single-threaded binary used: ${firstLine(err as Error)})`;
      if (registeredWasmThreads !== 1 && packageWasmFactory) registerWasmFactory(packageWasmFactory, 1);
    }
  } else if (target === 1 && registeredWasmThreads !== 1 && packageWasmFactory) {
    registerWasmFactory(packageWasmFactory, 1);
  }
  if (registeredWasmThreads === 1) wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new UserError('The WebAssembly backend failed to initialise (@tensorflow/tfjs-backend-wasm). Try --backend cpu.');
  await tf.ready();
  useZeroCopyIdentity('wasm');
  useCorrectWasmMaxPoolGrad();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  const running = wasm.getThreadsCount();
  return { description: `WebAssembly${simd ? ' SIMD' : ''}, ${running} thread${running === 1 ? '' : 's'}${note}` };
}

/**
 * The wasm backend's Identity kernel copies its input; tf.clone, and so every tensor that a gradient
 * function saves, goes through it. Sharing the data by reference count (as the cpu backend does) halves the
 * memory a training step keeps alive. Tensors are immutable, so sharing is safe.
 */
function useZeroCopyIdentity(backendName: string): void {
  const existing = tf.getKernel('Identity', backendName);
  if (existing && (existing as { zeroCopy?: boolean }).zeroCopy) return;
  if (existing) tf.unregisterKernel('Identity', backendName);
  const config = {
    kernelName: 'Identity',
    backendName,
    zeroCopy: true,
    kernelFunc: ({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }) => {
      const x = inputs.x as tf.TensorInfo;
      (backend as { incRef(dataId: unknown): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  };
  tf.registerKernel(config as unknown as tf.KernelConfig);
}

function installHint(kind: 'tensorflow-gpu' | 'tensorflow'): string {
  const pkg = NATIVE_PACKAGES[kind];
  const extra = kind === 'tensorflow-gpu' ? ' (needs an NVIDIA GPU with CUDA and cuDNN as the package documents)' : '';
  return `install it with \`npm install ${pkg}@4.22.0\`${extra}, or use --backend wasm`;
}

/** Activates a backend, registers the gradient functions training needs, and prints one line naming it. */
export async function selectBackend(choice: BackendChoice, opts: SelectBackendOptions = {}): Promise<SelectedBackend> {
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UserError(`Unknown backend '${String(choice)}': expected one of ${BACKEND_CHOICES.join(', ')}`);
  }
  let description: string;
  if (choice === 'tensorflow-gpu' || choice === 'tensorflow') {
    const err = await activateNative(choice);
    if (err) throw new UserError(`Backend '${choice}' is not available (${firstLine(err)}): ${installHint(choice)}`);
    description = choice === 'tensorflow-gpu' ? 'TensorFlow native (GPU build, @tensorflow/tfjs-node-gpu)' : 'TensorFlow native (CPU, @tensorflow/tfjs-node)';
  } else if (choice === 'auto') {
    if (!(await activateNative('tensorflow-gpu'))) description = 'TensorFlow native (GPU build, @tensorflow/tfjs-node-gpu)';
    else if (!(await activateNative('tensorflow'))) description = 'TensorFlow native (CPU, @tensorflow/tfjs-node)';
    else description = (await activateWasm(opts.threads)).description;
  } else if (choice === 'wasm') {
    description = (await activateWasm(opts.threads)).description;
  } else {
    await import('@tensorflow/tfjs-backend-cpu');
    // Production mode only silences the cpu backend's console banner recommending tfjs-node.
    tf.enableProdMode();
    if (!(await tf.setBackend('cpu'))) throw new UserError('The cpu backend failed to initialise');
    await tf.ready();
    description = 'plain JavaScript (cpu backend; slow, for checks)';
  }
  // tfjs-core's Node bundle has no gradient functions: training needs them on every backend.
  await registerGradients();
  const name = tf.getBackend();
  const grad = backendHasNativeConvGrad(name) ? 'native conv gradients' : 'conv gradients as forward convolutions';
  log(`backend: ${name} — ${description}; ${grad}`);
  return { name, description };
}

function firstLine(err: Error): string {
  const msg = (err.message || String(err)).split('\n')[0] ?? '';
  return /Cannot find (package|module)/.test(msg) ? 'package not installed' : msg;
}

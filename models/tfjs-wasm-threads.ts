/**
 * Threaded WebAssembly for the tfjs wasm backend in Node.
 *
 * @tensorflow/tfjs-backend-wasm (4.22.0) never uses its threaded SIMD binary in Node: the flag
 * WASM_HAS_MULTITHREAD_SUPPORT is hard-coded to false there (dist/flags_wasm.js, tfjs issue #3830), and its
 * init() could not start the threaded binary anyway, since it hands Emscripten Blob URLs for the pthread
 * worker and the main script, which Node's worker_threads cannot load. This module starts that binary itself
 * and wraps it in the package's own BackendWasm class (same kernels, same memory layout):
 *
 * - The pthread worker: wasm-out/tfjs-backend-wasm-threaded-simd.worker.js is not the worker script but a
 *   module exporting it as a string (wasmWorkerContents); it is written to a private temporary directory
 *   (with the same '\n' escaping the package applies before making its Blob) and removed as soon as the 8
 *   pre-started workers have loaded it. The main script the workers import is the Emscripten glue file itself.
 * - The thread cap: the binary sizes XNNPACK's pool as min(requested, 8, emscripten_num_logical_cores() / 2)
 *   (src/cc/backend.cc: "many x86-64 processors have 2 threads per core"); in Node that import returns
 *   os.cpus().length, so a 2-core machine gets 1 thread whatever was asked. The import is answered with twice
 *   the requested count, so the requested count (up to the 8 pre-started workers) is what runs.
 * - Exit: a running pthread's worker is ref'd and would keep Node alive after training; the pool's workers
 *   are unref'd once the pool is up (they only ever wait for work from the main thread).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type WasmPackage = typeof import('@tensorflow/tfjs-backend-wasm');

/** Workers the threaded binary pre-starts (Emscripten PTHREAD_POOL_SIZE) and the most threads it uses. */
export const MAX_WASM_THREADS = 8;
const LOAD_TIMEOUT_MS = 60_000;

interface EmscriptenWorker extends Worker {
  onerror?: (err: unknown) => void;
}

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...args: number[]) => number;
  PThread: { unusedWorkers: EmscriptenWorker[]; runningWorkers: EmscriptenWorker[]; terminateAllThreads(): void };
  tfjs?: unknown;
}

interface FactoryConfig {
  locateFile(file: string, prefix: string): string;
  mainScriptUrlOrBlob: string;
  instantiateWasm(imports: WebAssembly.Imports & { env: WebAssembly.ModuleImports }, receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void): object;
  PThread?: ThreadedModule['PThread'];
}

/** Loads the threaded SIMD binary with its pthread workers; resolves once every pre-started worker has loaded it. */
async function loadThreadedModule(threads: number): Promise<ThreadedModule> {
  const require = createRequire(import.meta.url);
  const out = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
  const gluePath = path.join(out, 'tfjs-backend-wasm-threaded-simd.js');
  const factory = require(gluePath) as (config: FactoryConfig) => Promise<ThreadedModule>;
  const { wasmWorkerContents } = require(path.join(out, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  if (typeof factory !== 'function' || typeof wasmWorkerContents !== 'string') throw new Error('unexpected layout of @tensorflow/tfjs-backend-wasm/wasm-out');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-wasm-threads-'));
  let timer: NodeJS.Timeout | undefined;
  try {
    const workerPath = path.join(dir, 'pthread-worker.cjs');
    fs.writeFileSync(workerPath, wasmWorkerContents.replace(/\n/g, '\\n'));
    let fail: (err: Error) => void = () => undefined;
    let loading = true;
    // The glue rethrows a worker's error from its handler, which would end the process: while loading, it
    // becomes a failure to load instead.
    const onWorkerError = (err: unknown): void => {
      if (!loading) throw err;
      fail(new Error(`a pthread worker failed: ${String(err)}`));
    };
    const failed = new Promise<never>((_, reject) => {
      fail = reject;
      timer = setTimeout(() => reject(new Error(`the pthread workers did not load within ${LOAD_TIMEOUT_MS / 1000} s`)), LOAD_TIMEOUT_MS);
    });
    const config: FactoryConfig = {
      locateFile: (file) => (file.endsWith('.worker.js') ? workerPath : path.join(out, file)),
      mainScriptUrlOrBlob: gluePath,
      instantiateWasm(imports, receive) {
        imports.env.emscripten_num_logical_cores = () => 2 * threads;
        fs.promises.readFile(path.join(out, 'tfjs-backend-wasm-threaded-simd.wasm'))
          .then((bytes) => WebAssembly.instantiate(bytes, imports))
          .then(({ instance, module }) => {
            receive(instance, module);
            for (const w of config.PThread?.unusedWorkers ?? []) w.onerror = onWorkerError;
          })
          .catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
        return {};
      },
    };
    const ready = factory(config);
    for (const w of config.PThread?.unusedWorkers ?? []) {
      w.on('error', (err) => {
        if (loading) fail(new Error(`a pthread worker failed: ${String(err)}`));
      });
      w.on('exit', (code) => {
        if (loading) fail(new Error(`a pthread worker exited (code ${code}) while loading`));
      });
    }
    try {
      return await Promise.race([ready, failed]);
    } catch (err) {
      config.PThread?.terminateAllThreads();
      throw err;
    } finally {
      loading = false;
    }
  } finally {
    clearTimeout(timer);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A wasm backend running XNNPACK on `threads` threads (2..8) of the threaded SIMD binary. Throws when the
 * binary cannot be started or runs fewer than 2 threads; the caller then uses the package's own backend.
 */
export async function createThreadedWasmBackend(pkg: WasmPackage, threads: number): Promise<BackendWasm> {
  const wanted = Math.min(Math.max(2, Math.floor(threads)), MAX_WASM_THREADS);
  const module = await loadThreadedModule(wanted);
  // What the package's init() attaches to the module before constructing BackendWasm.
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  pkg.setThreadsCount(wanted);
  // The constructor creates the XNNPACK thread pool (init_with_threads_count) and records its size.
  const backend = new pkg.BackendWasm(module as unknown as ConstructorParameters<typeof pkg.BackendWasm>[0]);
  for (const w of module.PThread.runningWorkers) w.unref();
  const running = pkg.getThreadsCount();
  if (running < 2) {
    backend.dispose();
    throw new Error(`the threaded binary started ${running} thread${running === 1 ? '' : 's'}`);
  }
  return backend;
}

/**
 * The feature extractor: an ONNX backbone run by onnxruntime-web. WebGPU is tried first when the
 * browser offers an adapter, then WebAssembly, multi-threaded when the page is cross-origin isolated
 * (the server sends COOP/COEP headers so that SharedArrayBuffer is available).
 *
 * onnxruntime-web ships WebGPU in a larger runtime (28 MB of WebAssembly against 14 MB for the plain
 * build), so the page loads the WebGPU build only when the browser has a GPU adapter: on a phone or
 * a machine without one, the smaller runtime starts in about half the time.
 */
import type * as Ort from 'onnxruntime-web';
import { type Preprocessing, pixelsToInput } from './preprocessing.js';

/** Where the build copies onnxruntime-web's .mjs/.wasm files (served by the same origin, no CDN). */
const ORT_ASSETS_PATH = 'ort/';
const MAX_THREADS = 4;
/** Pictures per inference run. */
const MAX_BATCH = 8;

export interface BackboneInfo {
  provider: 'webgpu' | 'wasm';
  threads: number;
}

type OrtModule = typeof Ort;

function configureWasm(ort: OrtModule): number {
  ort.env.wasm.wasmPaths = new URL(ORT_ASSETS_PATH, document.baseURI).href;
  const threads = globalThis.crossOriginIsolated ? Math.max(1, Math.min(MAX_THREADS, navigator.hardwareConcurrency || 1)) : 1;
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = 'error';
  return threads;
}

async function webgpuUsable(): Promise<boolean> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

export class Backbone {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    readonly preprocessing: Preprocessing,
    readonly info: BackboneInfo,
  ) {}

  /** Creates the session, preferring WebGPU and falling back to WebAssembly. */
  static async create(model: Uint8Array, preprocessing: Preprocessing, preferred: 'auto' | 'wasm' = 'auto'): Promise<Backbone> {
    if (preferred === 'auto' && (await webgpuUsable())) {
      const ort = await import('onnxruntime-web');
      const threads = configureWasm(ort);
      try {
        const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'] });
        return new Backbone(ort, session, preprocessing, { provider: 'webgpu', threads: 1 });
      } catch (err) {
        console.warn('WebGPU session failed; using WebAssembly instead:', err);
        // This build runs WebAssembly too; its runtime is already loaded.
        const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
        return new Backbone(ort, session, preprocessing, { provider: 'wasm', threads });
      }
    }
    const ort = await import('onnxruntime-web/wasm');
    const threads = configureWasm(ort);
    const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    return new Backbone(ort, session, preprocessing, { provider: 'wasm', threads });
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Features of pictures given as RGBA pixels at the model's size; rows of length featureDim, in order. */
  async features(pixels: Uint8ClampedArray[]): Promise<{ data: Float32Array; dim: number }> {
    // Run in small batches: a phone's memory holds the activations of a few 84x84 pictures, not of a hundred.
    const parts: Float32Array[] = [];
    let dim = 0;
    for (let start = 0; start < pixels.length; start += MAX_BATCH) {
      const part = await this.batchFeatures(pixels.slice(start, start + MAX_BATCH));
      parts.push(part.data);
      dim = part.dim;
    }
    const data = new Float32Array(pixels.length * dim);
    parts.forEach((part, i) => data.set(part, i * MAX_BATCH * dim));
    return { data, dim };
  }

  private async batchFeatures(pixels: Uint8ClampedArray[]): Promise<{ data: Float32Array; dim: number }> {
    const p = this.preprocessing;
    const perImage = 3 * p.size * p.size;
    const input = new Float32Array(perImage * pixels.length);
    pixels.forEach((rgba, i) => pixelsToInput(rgba, p, input, i * perImage));
    const dims = p.layout === 'nchw' ? [pixels.length, 3, p.size, p.size] : [pixels.length, p.size, p.size, 3];
    const tensor = new this.ort.Tensor('float32', input, dims);
    const results = await this.session.run({ [p.inputName]: tensor }, [p.outputName]);
    const out = results[p.outputName];
    const data = out.data as Float32Array;
    const dim = data.length / pixels.length;
    // The features may alias onnxruntime's memory; copy so later runs cannot overwrite them.
    const copy = Float32Array.from(data);
    out.dispose();
    return { data: copy, dim };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

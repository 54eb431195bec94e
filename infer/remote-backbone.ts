/**
 * Feature extraction through a remote KServe v2 / Open Inference Protocol server (Triton, KServe, another
 * `skd serve`) instead of a local ONNX Runtime session: images are preprocessed here exactly as the local
 * session would (the model file's metadata, or the flags, say how), sent as FP32 tensors in the graph's layout,
 * and the raw features come back. The heads, augmentation, batching and store stay in this process.
 *
 * Calls have a timeout; an infer call is a pure function of its input, so it is retried with exponential
 * backoff when the connection fails, times out or the server answers 502/503/504. When the retries are spent,
 * the request fails with 502 (unreachable, or a bad answer) or 504 (no answer in time), naming the backbone.
 */
import { normalizePixels } from '../data/augment.js';
import { UserError } from '../data/errors.js';
import { inputNormalization } from '../models/preprocessing.js';
import type { BackboneHealth, ServedExtractor } from './server/context.js';
import { HttpError } from './server/errors.js';
import { nhwcToNchw } from './layout.js';
import { FeatureExtractor, type OpenOptions, type Preprocessing } from './session.js';

export interface RemoteBackboneOptions {
  /** Longest wait for one call, in milliseconds. Default 10,000. */
  timeoutMs?: number;
  /** Further attempts after a failed call. Default 2. */
  retries?: number;
  /** Wait before the first retry, doubled for each next one, in milliseconds. Default 100. */
  backoffMs?: number;
  /** Most images per call (the backbone's max_batch_size). Default 64. */
  maxBatch?: number;
  /** Where a warning goes when the backbone does not answer at start. Default: stderr. */
  log?: (line: string) => void;
}

interface V2Metadata {
  name?: string;
  inputs?: { name: string; datatype: string; shape: number[] }[];
  outputs?: { name: string; datatype: string; shape: number[] }[];
}

interface V2InferResponse {
  outputs?: { name: string; datatype?: string; shape?: number[]; data?: unknown }[];
  error?: string;
}

/** A failure worth retrying (the call may succeed later), with the status to answer once retries are spent. */
class TransientError extends Error {
  constructor(message: string, readonly status: 502 | 504) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The model URL, checked: http(s)://host:port/v2/models/<name>[/versions/<v>], without a trailing slash. */
export function parseBackboneUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--backbone-url ${url}: not a URL; expected http://HOST:PORT/v2/models/NAME`);
  }
  if (!/^https?:$/.test(u.protocol) || !/^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/?$/.test(u.pathname)) {
    throw new UserError(`--backbone-url ${url}: expected http://HOST:PORT/v2/models/NAME (optionally /versions/V)`);
  }
  u.pathname = u.pathname.replace(/\/$/, '');
  return u;
}

export class RemoteBackbone implements ServedExtractor {
  readonly provider: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxBatch: number;

  constructor(
    private readonly url: URL,
    readonly preprocessing: Preprocessing,
    readonly featureDim: number,
    readonly metadata: Record<string, string>,
    options: RemoteBackboneOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = options.retries ?? 2;
    this.backoffMs = options.backoffMs ?? 100;
    this.maxBatch = options.maxBatch ?? 64;
    for (const [key, v] of Object.entries({ timeoutMs: this.timeoutMs, retries: this.retries, backoffMs: this.backoffMs, maxBatch: this.maxBatch })) {
      if (!Number.isInteger(v) || v < (key === 'retries' || key === 'backoffMs' ? 0 : 1)) throw new UserError(`remote backbone: ${key} must be a ${key === 'retries' || key === 'backoffMs' ? 'non-negative' : 'positive'} integer, got ${v}`);
    }
    this.provider = `remote ${url.href}`;
  }

  /**
   * Resolves the preprocessing and the feature width from the local model file (as a local session would, then
   * released), and checks them against the backbone's v2 metadata when it answers.
   */
  static async open(modelPath: string, url: string, openOptions: OpenOptions, options: RemoteBackboneOptions = {}): Promise<RemoteBackbone> {
    const parsed = parseBackboneUrl(url);
    const local = await FeatureExtractor.open(modelPath, { ...openOptions, device: 'cpu', threads: 1 });
    const backbone = new RemoteBackbone(parsed, local.preprocessing, local.featureDim, local.metadata, options);
    await local.close();
    let meta: V2Metadata;
    try {
      meta = (await backbone.call('GET', parsed.href)) as V2Metadata;
    } catch (err) {
      (options.log ?? ((line) => process.stderr.write(`${line}\n`)))(`skd serve: the backbone ${parsed.href} does not answer yet (${(err as Error).message}); requests that need features get 502 until it does`);
      return backbone;
    }
    backbone.checkMetadata(meta, modelPath);
    return backbone;
  }

  private checkMetadata(meta: V2Metadata, modelPath: string): void {
    const p = this.preprocessing;
    const where = `the backbone ${this.url.href}`;
    const input = meta.inputs?.find((i) => i.name === p.inputName);
    if (!input) throw new UserError(`${where} has no input ${JSON.stringify(p.inputName)} (it has ${(meta.inputs ?? []).map((i) => i.name).join(', ') || 'none'}); is it serving ${modelPath}?`);
    const want = p.layout === 'nhwc' ? [p.size, p.size, 3] : [3, p.size, p.size];
    const shape = input.shape.length === 4 ? input.shape.slice(1) : input.shape;
    if (input.datatype !== 'FP32' || shape.length !== 3 || shape.some((s, i) => s !== -1 && s !== want[i])) {
      throw new UserError(`${where}: input ${p.inputName} is ${input.datatype} [${input.shape.join(', ')}], but ${modelPath} takes FP32 [N, ${want.join(', ')}]`);
    }
    const output = meta.outputs?.find((o) => o.name === p.outputName);
    if (!output) throw new UserError(`${where} has no output ${JSON.stringify(p.outputName)} (it has ${(meta.outputs ?? []).map((o) => o.name).join(', ') || 'none'})`);
    const width = output.shape[output.shape.length - 1];
    if (width !== undefined && width !== -1 && width !== this.featureDim) {
      throw new UserError(`${where}: output ${p.outputName} has ${width} features per image, but ${modelPath} gives ${this.featureDim}`);
    }
  }

  async extractPixels(pixels: Uint8Array, count: number): Promise<Float32Array> {
    const size = this.preprocessing.size;
    if (pixels.length !== count * size * size * 3) throw new RangeError(`extractPixels: ${pixels.length} bytes for ${count} images of ${size}x${size}x3`);
    // The local session's normalisation, so that both feed the graph the same float32 values.
    const images = normalizePixels(pixels, count, inputNormalization(this.preprocessing));
    return this.extract(images, count);
  }

  /** Raw features of normalised float NHWC images, in calls of at most maxBatch images. */
  async extract(images: Float32Array, count: number): Promise<Float32Array> {
    const { size, layout, inputName, outputName } = this.preprocessing;
    const per = size * size * 3;
    const D = this.featureDim;
    const out = new Float32Array(count * D);
    for (let start = 0; start < count; start += this.maxBatch) {
      const b = Math.min(this.maxBatch, count - start);
      let batch = images.subarray(start * per, (start + b) * per);
      if (layout === 'nchw') {
        const nchw = new Float32Array(batch.length);
        nhwcToNchw(batch, nchw, b, size, size, 3);
        batch = nchw;
      }
      const shape = layout === 'nchw' ? [b, 3, size, size] : [b, size, size, 3];
      const body = JSON.stringify({ inputs: [{ name: inputName, shape, datatype: 'FP32', data: Array.from(batch) }], outputs: [{ name: outputName }] });
      const answer = (await this.call('POST', `${this.url.href}/infer`, body)) as V2InferResponse;
      out.set(this.featuresFrom(answer, b), start * D);
    }
    return out;
  }

  private featuresFrom(answer: V2InferResponse, b: number): Float32Array {
    const name = this.preprocessing.outputName;
    const output = answer.outputs?.find((o) => o.name === name);
    const bad = (why: string) => new HttpError(502, 'backbone', `the backbone ${this.url.href} answered with ${why}`);
    if (!output) throw bad(`no output ${JSON.stringify(name)}`);
    if (output.datatype !== undefined && output.datatype !== 'FP32') throw bad(`output ${name} of type ${output.datatype}, not FP32`);
    const data = Array.isArray(output.data) ? (output.data as unknown[]).flat(8) : [];
    if (data.length !== b * this.featureDim) throw bad(`${data.length} feature values for ${b} images of ${this.featureDim}`);
    const features = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`a non-finite or non-numeric feature (${JSON.stringify(v)})`);
      features[i] = v;
    }
    return features;
  }

  /** One idempotent call with timeout and retries; the JSON answer, or an HttpError 502/504. */
  private async call(method: 'GET' | 'POST', url: string, body?: string): Promise<unknown> {
    let last: TransientError | undefined;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await sleep(this.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
      try {
        return await this.once(method, url, body);
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        last = err;
      }
    }
    const tries = this.retries + 1;
    throw new HttpError(last!.status, 'backbone', `${last!.message} (${tries} attempt${tries === 1 ? '' : 's'})`, last!.status === 502 ? {} : { 'retry-after': '1' });
  }

  private async once(method: 'GET' | 'POST', url: string, body?: string): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(url, {
        method, body, signal: AbortSignal.timeout(this.timeoutMs),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new TransientError(`the backbone ${this.url.href} did not answer within ${this.timeoutMs} ms`, 504);
      throw new TransientError(`the backbone ${this.url.href} is unreachable (${e.cause?.code ?? e.cause?.message ?? e.message})`, 502);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      const e = err as Error;
      if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new TransientError(`the backbone ${this.url.href} did not finish its answer within ${this.timeoutMs} ms`, 504);
      throw new TransientError(`the backbone ${this.url.href} broke off its answer (${e.message})`, 502);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.status === 502 || res.status === 503 || res.status === 504) {
      throw new TransientError(`the backbone ${this.url.href} answered ${res.status}${errorText(json)}`, res.status === 504 ? 504 : 502);
    }
    if (!res.ok) throw new HttpError(502, 'backbone', `the backbone ${this.url.href} answered ${res.status}${errorText(json)}`);
    if (json === undefined) throw new HttpError(502, 'backbone', `the backbone ${this.url.href} answered with something that is not JSON`);
    return json;
  }

  async health(): Promise<BackboneHealth> {
    const started = performance.now();
    try {
      const res = await fetch(`${this.url.href}/ready`, { signal: AbortSignal.timeout(Math.min(this.timeoutMs, 2000)) });
      await res.text();
      const latencyMs = +(performance.now() - started).toFixed(1);
      return res.ok ? { ok: true, url: this.url.href, latencyMs } : { ok: false, url: this.url.href, latencyMs, error: `ready answered ${res.status}` };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return { ok: false, url: this.url.href, error: e.name === 'TimeoutError' ? 'no answer within the timeout' : `unreachable (${e.cause?.code ?? e.message})` };
    }
  }

  close(): void {
    // Connections are pooled by fetch and closed when idle.
  }
}

function errorText(json: unknown): string {
  const e = (json as { error?: unknown } | undefined)?.error;
  return typeof e === 'string' ? `: ${e}` : '';
}

/** What the route handlers share: the model, the batcher, the store, the metrics and the limits. */
import type { ExtractionBatcher } from './batcher.js';
import type { ServerMetrics } from './metrics.js';
import type { ClassifierStore } from './store.js';

/**
 * The part of infer/session.ts's FeatureExtractor the server uses; tests may pass any object of this
 * shape.
 */
export interface ServedExtractor {
  readonly featureDim: number;
  readonly preprocessing: { size: number; layout?: string; mean?: readonly number[]; std?: readonly number[]; normalizationInGraph?: boolean; inputName?: string; outputName?: string };
  readonly metadata: Record<string, string>;
  /** Raw (not normalised) features of `count` uint8 NHWC images at the model's size. */
  extractPixels(pixels: Uint8Array, count: number): Promise<Float32Array>;
  /**
   * Raw features of `count` images already preprocessed as the preprocessing says (float NHWC, normalised):
   * what the KServe v2 infer route feeds. Extractors without it answer that route with 501.
   */
  extract?(images: Float32Array, count: number): Promise<Float32Array>;
  /** For a remote backbone: whether it answers now (shown on /healthz). */
  health?(): Promise<BackboneHealth>;
  close(): Promise<void> | void;
}

export interface BackboneHealth {
  ok: boolean;
  url: string;
  /** Round trip of the health probe, in milliseconds. */
  latencyMs?: number;
  error?: string;
}

export interface ServerLimits {
  /** Largest request body in bytes. Default 32 MiB. */
  bodyLimitBytes: number;
  /** Most images per request (support and queries together, before augmentation). Default 256. */
  maxImages: number;
  /** Most pixels of one input image (height x width). Default 16,777,216 (4096 x 4096). */
  maxPixels: number;
  /** Most augmented copies per support image. Default 10. */
  maxAugment: number;
  /** Most images per ONNX Runtime run. Default 64. */
  maxBatch: number;
  /** Longest wait for more requests to join a run, in milliseconds. Default 3. */
  batchWaitMs: number;
  /** Most images waiting for a run before requests are refused with 503. Default 2048. */
  maxQueuedImages: number;
  /** Longest that decoding a request's images may take, in milliseconds; past it the answer is 413. Default 5000. */
  decodeBudgetMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  bodyLimitBytes: 32 * 1024 * 1024,
  maxImages: 256,
  maxPixels: 4096 * 4096,
  maxAugment: 10,
  maxBatch: 64,
  batchWaitMs: 3,
  maxQueuedImages: 2048,
  decodeBudgetMs: 5000,
};

export interface ModelDescription {
  /** Where the model was loaded from; served at /model.onnx. */
  path: string;
  sha256: string;
  sizeBytes: number;
  /** Anything else worth showing on /v1/model (inputs, outputs, opsets, ...). */
  info: Record<string, unknown>;
}

export interface ServerContext {
  extractor: ServedExtractor;
  model: ModelDescription;
  batcher: ExtractionBatcher;
  store: ClassifierStore;
  metrics: ServerMetrics;
  limits: ServerLimits;
  /** Image side length the model takes. */
  size: number;
}

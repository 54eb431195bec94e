/**
 * Assembles a running server from a model file (or an already open extractor), a store directory and
 * limits, and shuts it down in order: stop accepting, finish requests in flight, drain the batcher,
 * close the extractor.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { readOnnxModelInfo } from '../../proto/read.js';
import { buildApp } from './app.js';
import { ExtractionBatcher } from './batcher.js';
import { DEFAULT_LIMITS, type ModelDescription, type ServedExtractor, type ServerContext, type ServerLimits } from './context.js';
import { ServerMetrics } from './metrics.js';
import type { ClassifierStore } from './store.js';
import { openClassifierStore } from './store-open.js';

export interface ServerOptions {
  extractor: ServedExtractor;
  /** The ONNX file the extractor was opened from (served at /model.onnx, fingerprinted for classifiers). */
  modelPath: string;
  /** Folder of saved classifiers, or a postgres:// URL (see store-open.ts). */
  storeDir: string;
  /** An already open store, used instead of opening storeDir (closed with the server). */
  store?: ClassifierStore;
  limits?: Partial<ServerLimits>;
  webDir?: string;
  logger?: FastifyServerOptions['logger'];
  /** Origins whose pages may call the API (skd serve --cors); default none. */
  corsOrigins?: readonly string[];
  /** skd's version, for the OpenAPI document. */
  version?: string;
  /** The backbone's name on the KServe v2 routes (default: the model file's base name). */
  modelName?: string;
}

export interface RunningServer {
  app: FastifyInstance;
  ctx: ServerContext;
  /** The address it listens on, e.g. "http://127.0.0.1:8080". */
  url: string;
  /** Stops accepting connections, lets requests in flight finish, then releases the model. */
  close(): Promise<void>;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function describeModel(path: string): Promise<ModelDescription> {
  const absolute = resolve(path);
  const info = readOnnxModelInfo(absolute);
  return {
    path: absolute,
    sha256: await sha256File(absolute),
    sizeBytes: statSync(absolute).size,
    info: {
      inputs: info.inputs, outputs: info.outputs, irVersion: info.irVersion, opsetImports: info.opsetImports,
      producer: info.producer, parameterCount: info.parameterCount, nodeCount: info.nodeCount,
    },
  };
}

export function checkLimits(limits: ServerLimits): void {
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value < (key === 'batchWaitMs' || key === 'maxAugment' ? 0 : 1)) {
      throw new RangeError(`limit ${key} must be a ${key === 'batchWaitMs' || key === 'maxAugment' ? 'non-negative' : 'positive'} number, got ${value}`);
    }
  }
}

/** Builds the context and the fastify app without listening (tests may call app.inject). */
export async function createServer(options: ServerOptions): Promise<{ app: FastifyInstance; ctx: ServerContext }> {
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  checkLimits(limits);
  const size = options.extractor.preprocessing.size;
  const metrics = new ServerMetrics();
  const batcher = new ExtractionBatcher(
    (pixels, count) => options.extractor.extractPixels(pixels, count),
    size * size * 3,
    options.extractor.featureDim,
    {
      maxBatch: limits.maxBatch,
      maxWaitMs: limits.batchWaitMs,
      maxQueuedImages: limits.maxQueuedImages,
      onRun: (images, requests, seconds) => {
        metrics.batchSize.observe(images);
        metrics.batchRequests.observe(requests);
        metrics.batchSeconds.observe(seconds);
      },
    },
  );
  const store = options.store ?? await openClassifierStore(options.storeDir);
  let model: ModelDescription;
  try {
    model = await describeModel(options.modelPath);
  } catch (err) {
    await store.close();
    throw err;
  }
  const ctx: ServerContext = { extractor: options.extractor, model, batcher, store, metrics, limits, size };
  metrics.addGauge('skd_queue_images', 'Images waiting for an ONNX Runtime run.', () => batcher.queuedImages);
  metrics.addGauge('skd_classifiers', 'Saved classifiers in the store.', () => store.size);
  metrics.addGauge('process_resident_memory_bytes', 'Resident set size of the server process.', () => process.memoryUsage.rss());
  metrics.addGauge('nodejs_heap_used_bytes', 'V8 heap in use (JavaScript objects) in the server process.', () => process.memoryUsage().heapUsed);
  const app = await buildApp(ctx, { webDir: options.webDir, logger: options.logger, corsOrigins: options.corsOrigins, version: options.version, modelName: options.modelName });
  for (const s of store.skipped) app.log.warn(`store: skipped ${s.file}: ${s.reason}`);
  return { app, ctx };
}

/** createServer, then listen on host:port (port 0 picks a free one). */
export async function startServer(options: ServerOptions & { host: string; port: number }): Promise<RunningServer> {
  const { app, ctx } = await createServer(options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  return {
    app, ctx, url: `http://${host}:${port}`,
    close: () => (closing ??= (async () => {
      await app.close();
      await ctx.batcher.close();
      await ctx.extractor.close();
      await ctx.store.close();
    })()),
  };
}

/**
 * `skd serve`: an HTTP service for embeddings and few-shot classification with an ONNX backbone
 * (see infer/server/). Binds to 127.0.0.1 unless --host says otherwise; SIGTERM or SIGINT finishes the
 * requests in flight, then exits.
 */
import { existsSync } from 'node:fs';

import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';
import { packageVersion } from '../../export/version.js';
import { DEFAULT_LIMITS, type ServerLimits } from '../../infer/server/context.js';
import { parseCorsOrigins } from '../../infer/server/http-conventions.js';
import { startServer } from '../../infer/server/server.js';
import { RemoteBackbone } from '../../infer/remote-backbone.js';
import { FeatureExtractor } from '../../infer/session.js';
import { portableMetadata } from '../../proto/portable-config.js';
import { foreignGraphOptions, foreignGraphOverrides, type ForeignGraphArgs } from '../options/foreign-graph.js';
import { runtimeOf, runtimeOptions, type RuntimeArgs } from '../options/runtime.js';
import { WEB_DIST } from './web.js';

interface ServeArgs extends ForeignGraphArgs, RuntimeArgs {
  model: string;
  port: number;
  host: string;
  store: string;
  web?: string;
  'body-limit-mb': number;
  'max-images': number;
  'max-pixels': number;
  'max-augment': number;
  'max-batch': number;
  'batch-wait-ms': number;
  'max-queue': number;
  'decode-budget-ms': number;
  cors: string[];
  log: boolean;
  'backbone-url'?: string;
  'backbone-timeout-ms': number;
  'backbone-retries': number;
  'model-name'?: string;
}

function limitsFrom(args: ServeArgs): ServerLimits {
  const limits: ServerLimits = {
    bodyLimitBytes: Math.round(args['body-limit-mb'] * 1024 * 1024),
    maxImages: args['max-images'],
    maxPixels: args['max-pixels'],
    maxAugment: args['max-augment'],
    maxBatch: args['max-batch'],
    batchWaitMs: args['batch-wait-ms'],
    maxQueuedImages: args['max-queue'],
    decodeBudgetMs: args['decode-budget-ms'],
  };
  const flags: Record<keyof ServerLimits, string> = {
    bodyLimitBytes: '--body-limit-mb', maxImages: '--max-images', maxPixels: '--max-pixels', maxAugment: '--max-augment',
    maxBatch: '--max-batch', batchWaitMs: '--batch-wait-ms', maxQueuedImages: '--max-queue', decodeBudgetMs: '--decode-budget-ms',
  };
  for (const key of Object.keys(limits) as (keyof ServerLimits)[]) {
    const v = limits[key];
    const min = key === 'batchWaitMs' || key === 'maxAugment' ? 0 : 1;
    if (!Number.isFinite(v) || v < min || (key !== 'bodyLimitBytes' && !Number.isInteger(v))) {
      throw new UserError(`${flags[key]} must be ${min === 0 ? 'a non-negative' : 'a positive'} ${key === 'bodyLimitBytes' ? 'number' : 'integer'}, got ${v}`);
    }
  }
  return limits;
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'HTTP service: embeddings, one-call few-shot classification, saved classifiers, metrics',
  builder: (y: Argv) => foreignGraphOptions(runtimeOptions(y
    .option('model', { type: 'string', demandOption: true, describe: 'ONNX backbone (from skd export, or a foreign graph described by the flags below)' })
    .option('port', { type: 'number', default: 8080, describe: 'TCP port (0 picks a free one)' })
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to bind; 0.0.0.0 exposes the service to the network' })
    .option('store', { type: 'string', default: './skd-store', describe: 'saved classifiers: a directory (one JSON file each, written atomically) or a postgres:// URL shared by replicas' })
    .option('web', { type: 'string', describe: 'folder of the browser demo served at / (default: web/dist of this package, when built)' })))
    .option('body-limit-mb', { type: 'number', default: DEFAULT_LIMITS.bodyLimitBytes / 1024 / 1024, describe: 'largest request body (MiB)' })
    .option('max-images', { type: 'number', default: DEFAULT_LIMITS.maxImages, describe: 'most images per request (support + queries, before augmentation)' })
    .option('max-pixels', { type: 'number', default: DEFAULT_LIMITS.maxPixels, describe: 'most pixels (height x width) of one input image' })
    .option('max-augment', { type: 'number', default: DEFAULT_LIMITS.maxAugment, describe: 'most augmented copies per support image' })
    .option('max-batch', { type: 'number', default: DEFAULT_LIMITS.maxBatch, describe: 'most images per ONNX Runtime run' })
    .option('batch-wait-ms', { type: 'number', default: DEFAULT_LIMITS.batchWaitMs, describe: 'longest wait for other requests to join a run (ms)' })
    .option('max-queue', { type: 'number', default: DEFAULT_LIMITS.maxQueuedImages, describe: 'most images waiting for a run; beyond it requests get 503 + Retry-After' })
    .option('decode-budget-ms', { type: 'number', default: DEFAULT_LIMITS.decodeBudgetMs, describe: 'longest time decoding one request\'s images may take (ms); beyond it the answer is 413' })
    .option('cors', { type: 'string', array: true, default: [] as string[], describe: 'origin whose pages may call the API, e.g. https://app.example.com (repeat it or separate by commas; * for any); none by default' })
    .option('log', { type: 'boolean', default: false, describe: 'log every request (JSON lines on stderr)' })
    .option('backbone-url', { type: 'string', describe: 'extract features through a KServe v2 server (Triton, KServe, another skd serve): http://HOST:PORT/v2/models/NAME; --model is then the same ONNX file, read for its preprocessing' })
    .option('backbone-timeout-ms', { type: 'number', default: 10_000, describe: 'with --backbone-url: longest wait for one call (ms)' })
    .option('backbone-retries', { type: 'number', default: 2, describe: 'with --backbone-url: further attempts after a failed call, with exponential backoff' })
    .option('model-name', { type: 'string', describe: 'the model\'s name on the KServe v2 routes /v2/models/NAME (default: the model file\'s base name)' }) as unknown as Argv<ServeArgs>,
  handler: async (args) => {
    const limits = limitsFrom(args);
    let corsOrigins: string[];
    try {
      corsOrigins = parseCorsOrigins(args.cors);
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new UserError(`--port must be an integer 0-65535, got ${args.port}`);
    if (args.web !== undefined && !existsSync(args.web)) throw new UserError(`--web ${args.web}: no such folder`);
    if (args['model-name'] !== undefined && !/^[A-Za-z0-9_.-]{1,128}$/.test(args['model-name'])) throw new UserError(`--model-name must be 1-128 letters, digits, '_', '.' or '-', got '${args['model-name']}'`);
    const openOptions = { ...runtimeOf(args), output: args.output, overrides: foreignGraphOverrides(args) };
    const extractor = args['backbone-url'] !== undefined
      ? await RemoteBackbone.open(args.model, args['backbone-url'], openOptions, { timeoutMs: args['backbone-timeout-ms'], retries: args['backbone-retries'], maxBatch: limits.maxBatch })
      : await FeatureExtractor.open(args.model, openOptions);
    let server;
    try {
      server = await startServer({
        extractor, modelPath: args.model, storeDir: args.store, limits, host: args.host, port: args.port,
        webDir: args.web ?? WEB_DIST, corsOrigins, version: packageVersion(), modelName: args['model-name'],
        logger: { level: args.log ? 'info' : 'warn', stream: process.stderr },
      });
    } catch (err) {
      await extractor.close();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new UserError(`port ${args.port} on ${args.host} is already in use (pick another with --port)`);
      if (code === 'EACCES') throw new UserError(`no permission to listen on ${args.host}:${args.port}, or to use --store ${args.store}`);
      if (code === 'ENOTDIR' || code === 'EEXIST') throw new UserError(`--store ${args.store}: not a directory`);
      if (code === 'EADDRNOTAVAIL') throw new UserError(`--host ${args.host}: no such local address`);
      throw err;
    }
    const running = server;
    const p = extractor.preprocessing;
    process.stderr.write(`skd serve: ${args.model} (${p.layout} ${p.size}x${p.size}, ${extractor.featureDim}-d features, ${extractor.provider}); store ${running.ctx.store.location} (${running.ctx.store.size} classifiers)\n`);
    if (portableMetadata(extractor.metadata) !== extractor.metadata) {
      process.stderr.write(`skd serve: ${args.model} records local paths in its training configuration (exported by an older skd); /v1/model and /model.onnx give their base names only. Export it again to drop them from the file\n`);
    }
    process.stdout.write(`listening on ${running.url}\n`);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        process.stderr.write(`skd serve: ${signal} again, exiting now\n`);
        process.exit(1);
      }
      stopping = true;
      process.stderr.write(`skd serve: ${signal}: finishing requests in flight, then exiting\n`);
      running.close().then(() => process.exit(0), (err: unknown) => {
        process.stderr.write(`skd serve: error while shutting down: ${(err as Error).message}\n`);
        process.exit(1);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  },
};

/**
 * Builds the fastify application: JSON-schema validation with field-naming errors, metrics hooks,
 * cross-origin-isolation headers, the JSON API, operational routes and the browser demo's files.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify';
import fastifyStatic from '@fastify/static';
import { BatcherClosedError, QueueFullError } from './batcher.js';
import type { ServerContext } from './context.js';
import { HttpError, errorBody, fieldFromInstancePath } from './errors.js';
import { registerHttpConventions } from './http-conventions.js';
import { openApiDocument, recordRoutes } from './openapi.js';
import { storeHttpError } from './conditions.js';
import { modelNameFromPath } from '../../data/model-name.js';
import { MODEL_VERSION, registerKServeRoutes } from './kserve.js';
import { registerApiRoutes } from './routes.js';
import { IMAGE_DESCRIPTION } from './schemas.js';
import { portableModelBytes } from './served-model.js';
import { portableMetadata } from '../../proto/portable-config.js';

export interface AppOptions {
  /** Folder of the browser demo's built files, served at "/" when it exists. */
  webDir?: string;
  /** Without a server context (`skd web`): the ONNX file served at /model.onnx for the page, or none. */
  modelPath?: string | null;
  /** fastify's logger setting (default false: silent). */
  logger?: FastifyServerOptions['logger'];
  /** Origins whose pages may call the API (from http-conventions.ts parseCorsOrigins); default none. */
  corsOrigins?: readonly string[];
  /** Version given in the OpenAPI document (skd's). */
  version?: string;
  /** The backbone's name on the KServe v2 routes (default: the model file's base name). */
  modelName?: string;
}

/**
 * Headers on every answer: they make the page cross-origin isolated (onnxruntime-web needs SharedArrayBuffer for
 * its threads), keep every resource same-origin, and stop browsers from guessing content types.
 */
export const ISOLATION_HEADERS: Record<string, string> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
};

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params?: { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
}

/**
 * The one HTTP application of skd. With a server context it is `skd serve` (API, operational routes, the page);
 * with null it is `skd web` (the page and the model file it loads, nothing else).
 */
export async function buildApp(ctx: ServerContext | null, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: ctx?.limits.bodyLimitBytes,
    // Idle keep-alive sockets are closed on shutdown; requests in flight finish first.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Malformed URLs and content types are refused before routing; answer them in the same JSON form.
    frameworkErrors: (err, _req, reply) => {
      const field = err.code === 'FST_ERR_BAD_URL' ? 'url' : 'headers';
      (reply as unknown as FastifyReply).code(400).header('content-type', 'application/json; charset=utf-8').send(errorBody(400, field, err.message));
    },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, useDefaults: false } },
  });

  const started = new WeakMap<object, bigint>();
  app.addHook('onRequest', async (req) => {
    started.set(req, process.hrtime.bigint());
  });
  // While shutting down, answers close their connection, so keep-alive clients do not hold the exit back.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) reply.header(k, v);
    if (closing) reply.header('connection', 'close');
    return payload;
  });
  if (ctx) app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = String(reply.statusCode);
    ctx.metrics.requests.inc({ route, method: req.method, status });
    if (reply.statusCode >= 400) ctx.metrics.errors.inc({ route, status });
    const t0 = started.get(req);
    if (t0 !== undefined) ctx.metrics.latency.observe(Number(process.hrtime.bigint() - t0) / 1e9, { route });
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    if (err instanceof QueueFullError) ctx?.metrics.rejected.inc();
    const { status, field, message, headers } = describeError(err);
    // A 500 the server describes itself (a model giving NaN) is logged by its message; anything else with its stack.
    if (status >= 500 && !(err instanceof QueueFullError) && !(err instanceof BatcherClosedError)) req.log.error(err instanceof HttpError ? `${field}: ${message}` : err);
    reply.code(status).headers(headers).send(errorBody(status, field, message));
  });
  registerHttpConventions(app, { corsOrigins: options.corsOrigins });
  const routes = recordRoutes(app);

  if (ctx) {
    registerApiRoutes(app, ctx);
    registerOperationalRoutes(app, ctx);
    registerKServeRoutes(app, ctx, options.modelName ?? modelNameFromPath(ctx.model.path), MODEL_VERSION);
  }
  registerModelFile(app, ctx ? ctx.model.path : options.modelPath ?? null);
  if (ctx) {
    const openapi = { title: 'skd serve', version: options.version ?? '0.0.0', description: 'Embeddings and few-shot classification with an ONNX backbone.' };
    app.get('/openapi.json', { schema: { summary: 'This document (OpenAPI 3.1)', tags: ['operations'] } }, async () => openApiDocument(routes, openapi));
  }

  const webDir = options.webDir;
  if (webDir && existsSync(webDir) && statSync(webDir).isDirectory()) {
    // Revalidate every time: a rebuilt page must not be served stale; ETags keep the 14-28 MB runtime cached.
    await app.register(fastifyStatic, { root: webDir, prefix: '/', index: ['index.html'], cacheControl: false, setHeaders: (res) => res.header('cache-control', 'no-cache') });
  } else {
    app.get('/', async () => ({
      name: 'skd', message: 'skd serve: the browser demo is not built here; the API is under /v1, described at /openapi.json',
      routes: routes.map((r) => `${r.method} ${r.url}`),
    }));
  }
  return app;
}

/**
 * GET /model.onnx: the backbone the page loads, with an ETag so that a browser revalidates instead of downloading
 * again. A file whose training configuration records local paths (an older export) is served as a copy without them.
 */
function registerModelFile(app: FastifyInstance, path: string | null): void {
  let portable: { etag: string; bytes: Promise<Uint8Array | undefined> } | undefined;
  app.get('/model.onnx', { schema: { summary: 'The ONNX backbone, for the browser demo or another runtime', tags: ['operations'] } }, async (req, reply) => {
    if (!path || !existsSync(path)) {
      return reply.code(404).send(errorBody(404, 'url', 'no model is served; start `skd web --model model.onnx` or pick a file in the page'));
    }
    const stats = statSync(path);
    const etag = `"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
    reply.header('etag', etag).header('cache-control', 'no-cache');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    // Built once per version of the file; a failed read is tried again on the next request.
    if (portable?.etag !== etag) {
      const entry = { etag, bytes: portableModelBytes(path) };
      entry.bytes.catch(() => { if (portable === entry) portable = undefined; });
      portable = entry;
    }
    const bytes = await portable.bytes;
    reply.type('application/octet-stream');
    if (bytes) return reply.header('content-length', String(bytes.length)).send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    reply.header('content-length', String(stats.size));
    return reply.send(createReadStream(path));
  });
}

function registerOperationalRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const startedAt = Date.now();
  app.get('/healthz', { schema: { summary: 'Liveness, queue length, stored classifiers, the store and (with --backbone-url) the backbone', tags: ['operations'] } }, async (_req, reply) => {
    // With a remote backbone, a replica that cannot reach it is not healthy: a load balancer should know.
    const backbone = await ctx.extractor.health?.();
    if (backbone && !backbone.ok) reply.code(503);
    return {
      status: backbone && !backbone.ok ? 'backbone unavailable' : 'ok',
      uptimeSeconds: (Date.now() - startedAt) / 1000,
      queuedImages: ctx.batcher.queuedImages,
      classifiers: ctx.store.size,
      store: ctx.store.location,
      ...(backbone ? { backbone } : {}),
    };
  });

  app.get('/v1/model', { schema: { summary: 'The model: file, sha256, inputs, outputs, preprocessing, metadata, and the server\'s limits', tags: ['operations'] } }, async () => ({
    file: basename(ctx.model.path),
    sha256: ctx.model.sha256,
    sizeBytes: ctx.model.sizeBytes,
    featureDim: ctx.extractor.featureDim,
    imageSize: ctx.size,
    preprocessing: ctx.extractor.preprocessing,
    metadata: portableMetadata(ctx.extractor.metadata),
    ...ctx.model.info,
    limits: ctx.limits,
  }));

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['operations'] } }, async (_req, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return ctx.metrics.render();
  });
}

/** Maps anything a handler or fastify throws to a status, the field at fault and a message. */
function describeError(err: FastifyError | Error): { status: number; field: string; message: string; headers: Record<string, string> } {
  const storeError = storeHttpError(err);
  if (storeError) return describeError(storeError);
  if (err instanceof HttpError) return { status: err.statusCode, field: err.field, message: err.message, headers: err.headers };
  if (err instanceof QueueFullError) return { status: 503, field: 'server', message: err.message, headers: { 'retry-after': '1' } };
  if (err instanceof BatcherClosedError) return { status: 503, field: 'server', message: err.message, headers: { 'retry-after': '5' } };
  const fe = err as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (Array.isArray(fe.validation) && fe.validation.length > 0) return { ...validationError(fe.validation, fe.validationContext ?? 'body'), headers: {} };
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { status, field: 'headers.content-type', message: 'requests with a body must be sent as content-type application/json', headers: {} };
    // The static files refuse paths such as "/..%5c" or "/a%00b" with 403: the fault is in the URL, not a body.
    if (status === 403 || status === 404) return { status, field: 'url', message: status === 403 ? 'the path is not allowed' : fe.message, headers: {} };
    return { status, field: 'body', message: fe.message, headers: {} };
  }
  if (status === 503) return { status, field: 'server', message: fe.message, headers: { 'retry-after': '5' } };
  return { status: 500, field: 'server', message: 'internal error; the server log has the details', headers: {} };
}

function validationError(errors: AjvError[], context: string): { status: number; field: string; message: string } {
  // An image that matches neither form produces one error per form, then the anyOf error: report that one.
  const anyOf = errors.find((e) => e.keyword === 'anyOf');
  if (anyOf) return { status: 400, field: fieldFromInstancePath(context, anyOf.instancePath), message: `expected ${IMAGE_DESCRIPTION}` };
  const e = errors[0] as AjvError;
  const field = fieldFromInstancePath(context, e.instancePath, e.params?.missingProperty ?? e.params?.additionalProperty);
  let message = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties' && e.params?.additionalProperty) message = `unknown property ${JSON.stringify(e.params.additionalProperty)}`;
  if (e.keyword === 'required') message = 'is required';
  if (e.keyword === 'enum' && e.params?.allowedValues) message = `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  return { status: 400, field, message: `${field} ${message}` };
}

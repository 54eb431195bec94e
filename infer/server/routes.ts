/** The JSON API: embeddings, one-call classification and saved classifiers. */
import type { FastifyInstance } from 'fastify';
import type { HeadKind } from '../heads/types.js';
import { RecordError, headOfRecord, validateRecord } from '../classifier-record.js';
import type { ServerContext } from './context.js';
import { writeCondition } from './conditions.js';
import { badRequest, conflict, notFound } from './errors.js';
import {
  decode, embedPixels, fitHead, imageField, parseSupport, predictions, prepareSupport, queryField, supportField,
  type SupportRequest,
} from './fewshot.js';
import { checkImageCount, type ImageInput } from './images.js';
import { classifyBody, embedBody, nameParams, predictBody, putClassifierBody, recordBody } from './schemas.js';
import { STORE_FORMAT, STORE_VERSION, summarize, type StoredClassifier, type StoredEntry } from './store.js';

const DEFAULT_HEAD: HeadKind = 'logreg';
/** Augmented copies per support image when a request says nothing: skd eval's default (--n_aug_support_samples 5). */
export const DEFAULT_AUGMENT = 5;

/** The default, unless the server's --max-augment is lower. */
const defaultAugment = (ctx: ServerContext): number => Math.min(DEFAULT_AUGMENT, ctx.limits.maxAugment);

type ClassifyRequest = SupportRequest & { queries: ImageInput[] };

export function registerApiRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const d = ctx.extractor.featureDim;

  app.post<{ Body: { images: ImageInput[] } }>('/v1/embed', { schema: { summary: 'L2-normalised features of images', tags: ['features'], body: embedBody } }, async (req) => {
    const { images } = req.body;
    checkImageCount([{ field: 'body.images', inputs: images, fieldOf: imageField }], ctx.limits);
    const decoded = await decode(ctx, images, imageField);
    const features = await embedPixels(ctx, decoded.pixels, decoded.count);
    const embeddings: number[][] = [];
    for (let i = 0; i < decoded.count; i++) embeddings.push(Array.from(features.subarray(i * d, (i + 1) * d)));
    return { dim: d, count: decoded.count, embeddings };
  });

  app.post<{ Body: ClassifyRequest }>('/v1/classify', { schema: { summary: 'Fit a head on a support set and classify queries in one call; nothing is stored', tags: ['classify'], body: classifyBody } }, async (req) => {
    const body = req.body;
    const set = parseSupport(body);
    checkImageCount([
      { field: 'body.support', inputs: set.inputs, fieldOf: supportField },
      { field: 'body.queries', inputs: body.queries, fieldOf: queryField },
    ], ctx.limits);
    const [support, queries] = await Promise.all([
      prepareSupport(ctx, set, body.augment ?? defaultAugment(ctx), body.seed ?? 0),
      decode(ctx, body.queries, queryField),
    ]);
    // Support and queries go through the extractor as one job, so they usually share one run.
    const pixels = new Uint8Array(support.pixels.length + queries.pixels.length);
    pixels.set(support.pixels, 0);
    pixels.set(queries.pixels, support.pixels.length);
    const features = await embedPixels(ctx, pixels, support.count + queries.count);
    const head = fitHead(body.head ?? DEFAULT_HEAD, body.C, features.subarray(0, support.count * d), support.count, d, support.labels, set.labelNames.length);
    return {
      labels: set.labelNames,
      head: head.kind,
      supportImages: support.count,
      predictions: predictions(head, features.subarray(support.count * d), queries.count, set.labelNames),
    };
  });

  app.put<{ Params: { name: string }; Body: SupportRequest }>('/v1/classifiers/:name', { schema: { summary: 'Fit a head on a support set and store it under a name', tags: ['classifiers'], 'x-responses': { 200: 'Replaced a classifier of that name', 201: 'Created', 412: 'If-Match or If-None-Match did not hold' }, params: nameParams, body: putClassifierBody } }, async (req, reply) => {
    const { name } = req.params;
    const body = req.body;
    const set = parseSupport(body);
    checkImageCount([{ field: 'body.support', inputs: set.inputs, fieldOf: supportField }], ctx.limits);
    const augment = body.augment ?? defaultAugment(ctx);
    const seed = body.seed ?? 0;
    const support = await prepareSupport(ctx, set, augment, seed);
    const features = await embedPixels(ctx, support.pixels, support.count);
    const head = fitHead(body.head ?? DEFAULT_HEAD, body.C, features, support.count, d, support.labels, set.labelNames.length);
    const record: StoredClassifier = {
      format: STORE_FORMAT, version: STORE_VERSION, name, labels: set.labelNames, head: head.toJSON(), headKind: head.kind,
      featureDim: d, modelSha256: ctx.model.sha256, supportImages: support.count, augment, seed, createdAt: new Date().toISOString(),
    };
    // Whether the name was new is decided by the store inside the serialised write, not by an earlier read.
    const { created, etag } = await ctx.store.put(record, writeCondition(req));
    reply.code(created ? 201 : 200).header('etag', etag);
    return summarize(record);
  });

  // The whole record, in the format the page saves and loads (infer/classifier-record.ts).
  app.get<{ Params: { name: string } }>('/v1/classifiers/:name/record', { schema: { summary: 'The whole stored record, in the format the page saves and loads', tags: ['classifiers'], params: nameParams } }, async (req, reply) => {
    const entry = await stored(ctx, req.params.name);
    reply.header('etag', entry.etag);
    return entry.classifier;
  });

  // Imports a record (a page's classifier.json, or another server's); the name in the path wins over the record's.
  app.put<{ Params: { name: string }; Body: Record<string, unknown> }>('/v1/classifiers/:name/record', { schema: { summary: 'Import a classifier record (a page\'s classifier.json, or another server\'s)', tags: ['classifiers'], 'x-responses': { 200: 'Replaced a classifier of that name', 201: 'Created', 409: 'The record was fitted on another model', 412: 'If-Match or If-None-Match did not hold' }, params: nameParams, body: recordBody } }, async (req, reply) => {
    const { name } = req.params;
    let record;
    try {
      record = validateRecord({ ...req.body, name });
    } catch (err) {
      if (err instanceof RecordError) throw badRequest(`body.${err.field}`, err.message);
      throw err;
    }
    if (record.modelSha256 !== ctx.model.sha256 || record.featureDim !== d) {
      throw conflict('body.modelSha256', `the record was fitted on features of another model (sha256 ${record.modelSha256.slice(0, 12)}..., ${record.featureDim} features); this server runs ${ctx.model.sha256.slice(0, 12)}... with ${d}`);
    }
    // Whether the name was new is decided by the store inside the serialised write, not by an earlier read.
    const { created, etag } = await ctx.store.put(record, writeCondition(req));
    reply.code(created ? 201 : 200).header('etag', etag);
    return summarize(record);
  });

  app.get('/v1/classifiers', { schema: { summary: 'The stored classifiers', tags: ['classifiers'] } }, async () => ({ classifiers: await ctx.store.list() }));

  app.get<{ Params: { name: string } }>('/v1/classifiers/:name', { schema: { summary: 'One stored classifier (without its weights)', tags: ['classifiers'], params: nameParams } }, async (req, reply) => {
    const entry = await stored(ctx, req.params.name);
    reply.header('etag', entry.etag);
    return summarize(entry.classifier);
  });

  app.delete<{ Params: { name: string } }>('/v1/classifiers/:name', { schema: { summary: 'Remove a stored classifier', tags: ['classifiers'], 'x-responses': { 200: 'OK', 412: 'If-Match did not hold' }, params: nameParams } }, async (req) => {
    const { name } = req.params;
    if (!(await ctx.store.delete(name, writeCondition(req)))) throw notFound('params.name', `no classifier named ${JSON.stringify(name)}`);
    return { deleted: name };
  });

  app.post<{ Params: { name: string }; Body: { queries: ImageInput[] } }>('/v1/classifiers/:name/predict', { schema: { summary: 'Classify queries with a stored classifier', tags: ['classifiers'], 'x-responses': { 200: 'OK', 409: 'The classifier was fitted on another model' }, params: nameParams, body: predictBody } }, async (req) => {
    const { classifier } = await stored(ctx, req.params.name);
    if (classifier.modelSha256 !== ctx.model.sha256 || classifier.featureDim !== d) {
      throw conflict('params.name', `classifier ${JSON.stringify(classifier.name)} was fitted on features of another model (sha256 ${classifier.modelSha256.slice(0, 12)}...); fit it again with PUT`);
    }
    const { queries } = req.body;
    checkImageCount([{ field: 'body.queries', inputs: queries, fieldOf: queryField }], ctx.limits);
    const decoded = await decode(ctx, queries, queryField);
    const features = await embedPixels(ctx, decoded.pixels, decoded.count);
    const head = headOfRecord(classifier);
    return { name: classifier.name, labels: classifier.labels, predictions: predictions(head, features, decoded.count, classifier.labels) };
  });
}

async function stored(ctx: ServerContext, name: string): Promise<StoredEntry> {
  const c = await ctx.store.get(name);
  if (!c) throw notFound('params.name', `no classifier named ${JSON.stringify(name)}`);
  return c;
}

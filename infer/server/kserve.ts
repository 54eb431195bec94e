/**
 * The Open Inference Protocol (KServe v2, the REST form Triton also speaks) for the served backbone, so that
 * KServe, Seldon and Triton clients, and another `skd serve --backbone-url`, can use it:
 *
 *   GET  /v2/health/live, /v2/health/ready        server liveness and readiness
 *   GET  /v2                                      server metadata
 *   GET  /v2/models/<name>[/versions/1]           model metadata: the graph's image input and feature output
 *   GET  /v2/models/<name>[/versions/1]/ready     model readiness
 *   POST /v2/models/<name>[/versions/1]/infer     preprocessed images in (FP32, the graph's layout), raw features out
 *
 * Tensors use the v2 JSON form ({name, shape, datatype, data}, data flat in row-major order or nested). Errors
 * answer {"error": message} as the protocol says, plus the field at fault.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { firstNonFiniteRow } from '../features.js';
import { nchwToNhwc } from '../layout.js';
import type { ServerContext } from './context.js';
import { HttpError, badRequest } from './errors.js';

export const MODEL_VERSION = '1';

interface V2Tensor {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data: unknown[];
}

interface V2InferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: V2Tensor[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

const inferBody = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string' },
    parameters: { type: 'object' },
    inputs: {
      type: 'array', minItems: 1, maxItems: 1,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype', 'data'],
        properties: {
          name: { type: 'string' },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
          datatype: { type: 'string' },
          parameters: { type: 'object' },
          data: { type: 'array' },
        },
      },
    },
    outputs: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, parameters: { type: 'object' } } } },
  },
} as const;

/** The graph input's shape per batch, as the v2 metadata states it (-1 for the batch dimension). */
function inputShape(ctx: ServerContext): number[] {
  const p = ctx.extractor.preprocessing;
  return p.layout === 'nhwc' ? [-1, p.size, p.size, 3] : [-1, 3, p.size, p.size];
}

/** Flattens v2 tensor data (flat or nested row-major) into float32, refusing anything but finite numbers. */
function flattenFp32(data: unknown[], expected: number, field: string): Float32Array {
  const out = new Float32Array(expected);
  let n = 0;
  const walk = (value: unknown, depth: number): void => {
    if (Array.isArray(value)) {
      if (depth > 8) throw badRequest(field, 'is nested deeper than the tensor has dimensions');
      for (const v of value) walk(v, depth + 1);
      return;
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) throw badRequest(field, `must hold finite numbers only; found ${JSON.stringify(value)} at position ${n}`);
    if (n >= expected) throw badRequest(field, `holds more than the ${expected} values its shape says`);
    out[n++] = value;
  };
  walk(data, 0);
  if (n !== expected) throw badRequest(field, `holds ${n} values; its shape says ${expected}`);
  return out;
}

/** One infer run at a time, like the batcher's runs, with the same bound on waiting images. */
class RunQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  constructor(private readonly maxWaitingImages: number) {}
  run<T>(images: number, work: () => Promise<T>): Promise<T> {
    if (this.waiting > 0 && this.waiting + images > this.maxWaitingImages) {
      throw new HttpError(503, 'server', `the inference queue is full (${this.waiting} images waiting); retry shortly`, { 'retry-after': '1' });
    }
    this.waiting += images;
    const next = this.tail.catch(() => undefined).then(() => {
      this.waiting -= images;
      return work();
    });
    this.tail = next;
    return next;
  }
}

export function registerKServeRoutes(app: FastifyInstance, ctx: ServerContext, modelName: string, version: string): void {
  const p = ctx.extractor.preprocessing;
  const inputName = p.inputName ?? 'images';
  const outputName = p.outputName ?? 'features';
  const d = ctx.extractor.featureDim;
  const queue = new RunQueue(ctx.limits.maxQueuedImages);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });

  void app.register(async (v2) => {
    v2.setErrorHandler((err: FastifyError | HttpError, _req, reply) => {
      if (err instanceof HttpError) {
        reply.code(err.statusCode).headers(err.headers).send({ error: `${err.field}: ${err.message}`, field: err.field });
        return;
      }
      const fe = err as FastifyError & { validation?: { instancePath: string; message?: string }[] };
      if (fe.validation?.[0]) {
        const v = fe.validation[0];
        const field = `body${v.instancePath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')}`;
        reply.code(400).send({ error: `${field} ${v.message ?? 'is invalid'}`, field });
        return;
      }
      const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 ? fe.statusCode : 500;
      if (status >= 500) _req.log.error(err);
      reply.code(status).send({ error: status >= 500 ? 'internal error; the server log has the details' : fe.message, field: status >= 500 ? 'server' : 'body' });
    });

    const checkModel = (name: string, v?: string): void => {
      if (name !== modelName) throw new HttpError(404, 'url', `no model named ${JSON.stringify(name)}; this server has ${JSON.stringify(modelName)}`);
      if (v !== undefined && v !== version) throw new HttpError(404, 'url', `model ${JSON.stringify(name)} has only version ${JSON.stringify(version)}`);
    };

    v2.get('/v2/health/live', async () => ({ live: true }));
    v2.get('/v2/health/ready', async (_req, reply) => {
      const ready = !closing && (await ctx.extractor.health?.())?.ok !== false;
      reply.code(ready ? 200 : 503);
      return { ready };
    });
    v2.get('/v2', async () => ({ name: 'skd', version: '1', extensions: [] }));

    const metadata = () => ({
      name: modelName,
      versions: [version],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: inputName, datatype: 'FP32', shape: inputShape(ctx) }],
      outputs: [{ name: outputName, datatype: 'FP32', shape: [-1, d] }],
    });
    v2.get<{ Params: { name: string } }>('/v2/models/:name', async (req) => (checkModel(req.params.name), metadata()));
    v2.get<{ Params: { name: string; version: string } }>('/v2/models/:name/versions/:version', async (req) => (checkModel(req.params.name, req.params.version), metadata()));
    const ready = async (name: string, reply: { code(c: number): unknown }) => {
      const ok = !closing && (await ctx.extractor.health?.())?.ok !== false;
      reply.code(ok ? 200 : 503);
      return { name, ready: ok };
    };
    v2.get<{ Params: { name: string } }>('/v2/models/:name/ready', async (req, reply) => (checkModel(req.params.name), ready(req.params.name, reply)));
    v2.get<{ Params: { name: string; version: string } }>('/v2/models/:name/versions/:version/ready', async (req, reply) => (checkModel(req.params.name, req.params.version), ready(req.params.name, reply)));

    const infer = async (body: V2InferRequest) => {
      const extract = ctx.extractor.extract?.bind(ctx.extractor);
      if (!extract) throw new HttpError(501, 'url', 'this server\'s extractor takes only images, not preprocessed tensors');
      const input = body.inputs[0]!;
      if (input.name !== inputName) throw badRequest('body.inputs[0].name', `the model's input is ${JSON.stringify(inputName)}, not ${JSON.stringify(input.name)}`);
      if (input.datatype !== 'FP32') throw badRequest('body.inputs[0].datatype', `must be "FP32", got ${JSON.stringify(input.datatype)}`);
      const want = inputShape(ctx);
      const shape = input.shape;
      if (shape.length !== 4 || shape.slice(1).some((s, i) => s !== want[i + 1]) || !(shape[0]! >= 1)) {
        throw badRequest('body.inputs[0].shape', `must be [N, ${want.slice(1).join(', ')}] with N >= 1, got [${shape.join(', ')}]`);
      }
      const n = shape[0]!;
      if (n > ctx.limits.maxImages) throw badRequest('body.inputs[0].shape', `at most ${ctx.limits.maxImages} images per request; got ${n}`);
      for (const [i, o] of (body.outputs ?? []).entries()) {
        if (o.name !== outputName) throw badRequest(`body.outputs[${i}].name`, `the model's output is ${JSON.stringify(outputName)}, not ${JSON.stringify(o.name)}`);
      }
      const s = p.size;
      const flat = flattenFp32(input.data, n * 3 * s * s, 'body.inputs[0].data');
      let nhwc = flat;
      if (p.layout !== 'nhwc') {
        nhwc = new Float32Array(flat.length);
        nchwToNhwc(flat, nhwc, n, s, s, 3);
      }
      const features = await queue.run(n, () => extract(nhwc, n));
      const bad = firstNonFiniteRow(features, n, d);
      if (bad >= 0) throw new HttpError(500, 'server', `the backbone produced a non-finite feature for image ${bad}`);
      return {
        model_name: modelName,
        model_version: version,
        ...(body.id !== undefined ? { id: body.id } : {}),
        outputs: [{ name: outputName, datatype: 'FP32', shape: [n, d], data: Array.from(features) }],
      };
    };
    v2.post<{ Params: { name: string }; Body: V2InferRequest }>('/v2/models/:name/infer', { schema: { body: inferBody } }, async (req) => {
      checkModel(req.params.name);
      return infer(req.body);
    });
    v2.post<{ Params: { name: string; version: string }; Body: V2InferRequest }>('/v2/models/:name/versions/:version/infer', { schema: { body: inferBody } }, async (req) => {
      checkModel(req.params.name, req.params.version);
      return infer(req.body);
    });
  });
}

/**
 * The OpenAPI 3.1 document of the running server (GET /openapi.json), generated from the routes as they are
 * registered: their JSON schemas (the ones fastify validates requests with) become parameters and request bodies,
 * and their `summary`/`description`/`tags` annotations the operations' text. A route added anywhere shows up
 * without further work. OpenAPI 3.1 uses JSON Schema itself, so the schemas go in unchanged.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { REASONS } from './errors.js';

// Route schemas carry the operations' text for the document (the same annotation keys @fastify/swagger reads).
declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: string[];
    /** Statuses this route answers with besides the common ones, with their descriptions. */
    'x-responses'?: Record<string, string>;
  }
}

interface RouteSchema {
  summary?: string;
  description?: string;
  tags?: string[];
  params?: { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  querystring?: { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  body?: Record<string, unknown>;
  /** Statuses this route answers with besides the common ones, with their descriptions (an annotation; fastify ignores it). */
  'x-responses'?: Record<string, string>;
}

export interface RecordedRoute {
  method: string;
  url: string;
  schema?: RouteSchema;
}

/** Records every route registered after this call (HEAD, which comes with GET, and wildcard routes left out). */
export function recordRoutes(app: FastifyInstance): RecordedRoute[] {
  const routes: RecordedRoute[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || route.url.includes('*')) continue;
      routes.push({ method, url: route.url, schema: route.schema as RouteSchema | undefined });
    }
  });
  return routes;
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

/** Error statuses the document describes (each route lists those it can answer with). */
const ERROR_STATUSES = ['400', '403', '404', '405', '409', '413', '415', '500', '503'];

const ERROR_SCHEMA = {
  type: 'object',
  description: 'Every error answer: the status, its reason, the request field at fault (for example "body.queries[2]", "params.name", "headers.content-type") and what to change.',
  required: ['statusCode', 'error', 'field', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    field: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

export function openApiDocument(routes: readonly RecordedRoute[], info: OpenApiInfo): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const sorted = [...routes].sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method));
  for (const route of sorted) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    (paths[path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      responses: Object.fromEntries(ERROR_STATUSES.map((code) => [code, {
        description: REASONS[Number(code)] ?? 'Error',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      }])),
    },
  };
}

function operation(route: RecordedRoute): Record<string, unknown> {
  const s = route.schema ?? {};
  const op: Record<string, unknown> = {
    operationId: operationId(route),
    summary: s.summary ?? `${route.method} ${route.url}`,
  };
  if (s.description) op.description = s.description;
  if (s.tags) op.tags = s.tags;
  const parameters = [
    ...parametersOf(s.params, 'path'),
    ...parametersOf(s.querystring, 'query'),
  ];
  if (parameters.length > 0) op.parameters = parameters;
  if (s.body) op.requestBody = { required: true, content: { 'application/json': { schema: s.body } } };
  const responses: Record<string, unknown> = {};
  for (const [code, description] of Object.entries(s['x-responses'] ?? { 200: 'OK' })) {
    responses[code] = Number(code) >= 400 ? { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } : { description };
  }
  const errors = ['405', '503'];
  if (s.params) errors.push('400', '404');
  if (s.body) errors.push('400', '413', '415');
  for (const code of [...new Set(errors)].sort()) responses[code] ??= { $ref: `#/components/responses/${code}` };
  op.responses = responses;
  return op;
}

function parametersOf(schema: RouteSchema['params'], where: 'path' | 'query'): Record<string, unknown>[] {
  if (!schema?.properties) return [];
  return Object.entries(schema.properties).map(([name, property]) => {
    const { description, ...rest } = property as { description?: string };
    const p: Record<string, unknown> = { name, in: where, required: where === 'path' || (schema.required ?? []).includes(name), schema: rest };
    if (description) p.description = description;
    return p;
  });
}

/** "PUT /v1/classifiers/:name" -> "put_v1_classifiers_name". */
function operationId(route: RecordedRoute): string {
  return `${route.method.toLowerCase()}${route.url.replace(/[^A-Za-z0-9]+/g, '_').replace(/_$/, '')}`;
}

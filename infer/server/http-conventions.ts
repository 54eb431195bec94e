/**
 * HTTP conventions kept beyond routing: a known path asked with another method gets 405 and `Allow`, OPTIONS
 * answers with `Allow`, a content type that does not parse is refused, and cross-origin requests get CORS headers
 * only from the origins given with `skd serve --cors`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, badRequest, errorBody } from './errors.js';

/** Methods a route can have; HEAD comes with every GET route. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** Request headers a cross-origin page may send: JSON bodies, and the conditions of optimistic concurrency. */
const CORS_ALLOWED_HEADERS = 'content-type, if-match, if-none-match';
/** Response headers a cross-origin page may read besides the simple ones (etag: for If-Match on the next write). */
const CORS_EXPOSED_HEADERS = 'retry-after, allow, etag';
/** Seconds a browser may cache a preflight answer. */
const CORS_MAX_AGE_S = 600;

/**
 * RFC 9110 media-type: type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] ).
 * Empty parameters are allowed by the grammar; a parameter without a name or value is not.
 */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\\\x00-\\x08\\x0a-\\x1f\\x7f]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"))?)*[ \\t]*$`);

export function isWellFormedMediaType(value: string): boolean {
  return MEDIA_TYPE.test(value);
}

/** The charset parameter of a well-formed media type, lower-cased and unquoted, or undefined. */
export function charsetOf(value: string): string | undefined {
  const m = /;[ \t]*charset=("?)([^";]*)\1/i.exec(value);
  return m ? m[2]!.trim().toLowerCase() : undefined;
}

/**
 * Origins allowed to call the API from a browser: exact origins ("https://example.com:8443") or "*".
 * Throws RangeError naming the bad entry.
 */
export function parseCorsOrigins(values: readonly string[]): string[] {
  const origins: string[] = [];
  for (const raw of values.flatMap((v) => v.split(','))) {
    const value = raw.trim();
    if (value === '') continue;
    if (value === '*') {
      origins.push('*');
      continue;
    }
    let origin: string | undefined;
    try {
      const url = new URL(value);
      if ((url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '').toLowerCase()) origin = url.origin;
    } catch {
      origin = undefined;
    }
    if (!origin) throw new RangeError(`--cors expects origins such as https://example.com or http://localhost:3000 (scheme, host, optional port, no path), or *; got '${value}'`);
    origins.push(origin);
  }
  return [...new Set(origins)];
}

/** Methods that have a route at `url` (a request path), not counting the catch-all of the static files. */
export function allowedMethods(app: FastifyInstance, url: string): string[] {
  const path = url.split('?')[0] ?? url;
  const allowed: string[] = [];
  for (const method of METHODS) {
    const found = app.findRoute({ method, url: path });
    // A wildcard match is the static files' catch-all, which matches every path: it does not make a path known.
    if (found && !(found.params && '*' in (found.params as Record<string, string>))) allowed.push(method);
  }
  return allowed;
}

export interface ConventionOptions {
  /** Origins from parseCorsOrigins; empty: no CORS headers at all. */
  corsOrigins?: readonly string[];
}

/**
 * Installs the content-type check, the CORS headers and the not-found handler that tells 404 from 405 and
 * answers OPTIONS. Call before the routes are registered.
 */
export function registerHttpConventions(app: FastifyInstance, options: ConventionOptions = {}): void {
  const origins = options.corsOrigins ?? [];
  const allowOrigin = (origin: string | undefined): string | undefined => {
    if (origin === undefined || origins.length === 0) return undefined;
    if (origins.includes('*')) return '*';
    return origins.includes(origin.toLowerCase()) ? origin : undefined;
  };

  // fastify takes text/plain by default, which would hand a string to the JSON schemas; the API speaks JSON only.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (req) => {
    const type = req.headers['content-type'];
    if (type !== undefined && !isWellFormedMediaType(type)) {
      throw badRequest('headers.content-type', `malformed content-type ${JSON.stringify(type.slice(0, 100))}; send application/json`);
    }
    // JSON travels as UTF-8 (RFC 8259); a body declared otherwise would be read wrongly, not refused.
    const charset = type === undefined ? undefined : charsetOf(type);
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw new HttpError(415, 'headers.content-type', `JSON bodies must be UTF-8; this one says charset=${charset}`);
    }
  });

  if (origins.length > 0) {
    app.addHook('onSend', async (req, reply, payload) => {
      const allowed = allowOrigin(req.headers.origin);
      if (allowed !== undefined) {
        reply.header('access-control-allow-origin', allowed);
        reply.header('access-control-expose-headers', CORS_EXPOSED_HEADERS);
      }
      if (allowed !== '*') addVary(reply, 'origin');
      return payload;
    });
  }

  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] ?? req.url;
    const allowed = allowedMethods(app, req.url);
    if (allowed.length === 0) return reply.code(404).send(errorBody(404, 'url', `no route ${req.method} ${path}`));
    const allow = [...allowed, 'OPTIONS'].join(', ');
    if (req.method !== 'OPTIONS') {
      return reply.code(405).header('allow', allow).send(errorBody(405, 'method', `${req.method} is not allowed on ${path}; it takes ${allowed.join(', ')}`));
    }
    const requested = req.headers['access-control-request-method'];
    if (origins.length > 0 && req.headers.origin !== undefined && typeof requested === 'string') {
      if (allowOrigin(req.headers.origin) === undefined) {
        return reply.code(403).send(errorBody(403, 'headers.origin', `origin ${JSON.stringify(req.headers.origin)} may not call this server (allowed: ${origins.join(', ')}; skd serve --cors)`));
      }
      if (!allowed.includes(requested.toUpperCase())) {
        return reply.code(405).header('allow', allow).send(errorBody(405, 'headers.access-control-request-method', `${requested} is not allowed on ${path}; it takes ${allowed.join(', ')}`));
      }
      reply.header('access-control-allow-methods', allowed.join(', '));
      reply.header('access-control-allow-headers', CORS_ALLOWED_HEADERS);
      reply.header('access-control-max-age', String(CORS_MAX_AGE_S));
    }
    return reply.code(204).header('allow', allow).send();
  });
}

/** Adds a header name to Vary, keeping what another hook or plugin put there. */
function addVary(reply: FastifyReply, name: string): void {
  const current = reply.getHeader('vary');
  const names = (Array.isArray(current) ? current.join(',') : current === undefined ? '' : String(current)).split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.includes('*') || names.some((n) => n.toLowerCase() === name)) return;
  reply.header('vary', [...names, name].join(', '));
}

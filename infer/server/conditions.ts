/**
 * Conditional requests on stored classifiers (RFC 9110 section 13): If-Match and If-None-Match headers become a
 * WriteCondition that the store checks atomically with the write; a failed one answers 412.
 */
import type { FastifyRequest } from 'fastify';
import { HttpError, badRequest } from './errors.js';
import { PreconditionFailedError, StoreUnavailableError, type WriteCondition } from './store.js';

/** "*", or a comma-separated list of entity tags ("abc", W/"abc"); weak tags never match (strong comparison). */
function parseTags(header: string, field: string): '*' | string[] {
  const text = header.trim();
  if (text === '*') return '*';
  const tags: string[] = [];
  const re = /\s*(W\/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(,|$)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while (end < text.length && (m = re.exec(text)) !== null) {
    if (!m[1]) tags.push(m[2]!);
    end = re.lastIndex;
    if (m[3] === '') break;
  }
  if (end !== text.length || (tags.length === 0 && !/W\//.test(text))) throw badRequest(field, `expected * or a list of quoted entity tags (as sent in ETag), got ${JSON.stringify(header)}`);
  return tags;
}

export function writeCondition(req: FastifyRequest): WriteCondition | undefined {
  const ifMatch = req.headers['if-match'];
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifMatch === undefined && ifNoneMatch === undefined) return undefined;
  const condition: WriteCondition = {};
  if (typeof ifMatch === 'string') condition.ifMatch = parseTags(ifMatch, 'headers.if-match');
  if (typeof ifNoneMatch === 'string') {
    if (parseTags(ifNoneMatch, 'headers.if-none-match') !== '*') throw badRequest('headers.if-none-match', 'only If-None-Match: * (create, never replace) is supported on writes');
    condition.ifNoneMatch = '*';
  }
  return condition;
}

/** The HTTP answer for a store's own errors (a failed condition, a database that is down); undefined otherwise. */
export function storeHttpError(err: unknown): HttpError | undefined {
  if (err instanceof PreconditionFailedError) return new HttpError(412, `headers.${err.header}`, err.message);
  if (err instanceof StoreUnavailableError) return new HttpError(503, 'store', err.message, { 'retry-after': '2' });
  return undefined;
}

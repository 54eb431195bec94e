/**
 * Errors the HTTP layer turns into 4xx/5xx JSON answers. Every answer names the offending field
 * (for example "body.queries[2]" or "params.name") so a client can tell what to fix.
 */

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly field: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (field: string, message: string): HttpError => new HttpError(400, field, message);
export const tooLarge = (field: string, message: string): HttpError => new HttpError(413, field, message);
export const notFound = (field: string, message: string): HttpError => new HttpError(404, field, message);
export const conflict = (field: string, message: string): HttpError => new HttpError(409, field, message);

/** The JSON body of every error answer. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  field: string;
  message: string;
}

/** Reason phrases of the statuses the server answers with. */
export const REASONS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function errorBody(statusCode: number, field: string, message: string): ErrorBody {
  return { statusCode, error: REASONS[statusCode] ?? 'Error', field, message };
}

/** JSON-pointer-ish path from a schema validator ("/queries/2/pixels") as "body.queries[2].pixels". */
export function fieldFromInstancePath(context: string, instancePath: string, missingProperty?: string): string {
  let field = context;
  for (const part of instancePath.split('/').filter((p) => p.length > 0)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    field += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  if (missingProperty) field += `.${missingProperty}`;
  return field;
}

/**
 * JSON schemas of the request bodies and parameters. Fastify validates every request against these
 * before a handler runs; a mismatch becomes a 400 naming the field (see app.ts). Checks that depend on
 * the configured limits or need the decoded image (image counts, pixel values, sizes) happen in code.
 */
import { HEAD_KINDS } from '../heads/types.js';
import { CLASSIFIER_NAME_PATTERN } from './store.js';

export const IMAGE_DESCRIPTION = 'a base64 PNG, JPEG or WebP string, or an object {"shape": [H, W, 3] or [N, H, W, 3], "pixels": [0-255 values]}';

const image = {
  description: IMAGE_DESCRIPTION,
  anyOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object',
      required: ['shape', 'pixels'],
      additionalProperties: false,
      properties: {
        shape: { type: 'array', minItems: 3, maxItems: 4, items: { type: 'integer', minimum: 1 } },
        pixels: { type: 'array' },
      },
    },
  ],
} as const;

const images = { type: 'array', minItems: 1, items: image } as const;

const label = { type: 'string', minLength: 1, maxLength: 128 } as const;

/** Support set and head settings shared by /v1/classify and PUT /v1/classifiers/:name. */
const supportProperties = {
  support: {
    type: 'array',
    minItems: 2,
    items: {
      type: 'object',
      required: ['label', 'image'],
      additionalProperties: false,
      properties: { label, image },
    },
  },
  labels: { type: 'array', minItems: 2, uniqueItems: true, items: label },
  augment: { type: 'integer', minimum: 0 },
  seed: { type: 'integer', minimum: 0, maximum: 0xffffffff },
  head: { type: 'string', enum: [...HEAD_KINDS] },
  C: { type: 'number', exclusiveMinimum: 0, maximum: 1e6 },
} as const;

export const embedBody = {
  type: 'object',
  required: ['images'],
  additionalProperties: false,
  properties: { images },
} as const;

export const classifyBody = {
  type: 'object',
  required: ['support', 'queries'],
  additionalProperties: false,
  properties: { ...supportProperties, queries: images },
} as const;

export const putClassifierBody = {
  type: 'object',
  required: ['support'],
  additionalProperties: false,
  properties: supportProperties,
} as const;

/** A classifier record; its fields are checked by infer/classifier-record.ts, which names the one at fault. */
export const recordBody = { type: 'object' } as const;

export const predictBody = {
  type: 'object',
  required: ['queries'],
  additionalProperties: false,
  properties: { queries: images },
} as const;

export const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: CLASSIFIER_NAME_PATTERN } },
} as const;

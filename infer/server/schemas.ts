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

const images = { type: 'array', minItems: 1, items: image, description: 'Images; together with the other images of the request at most the server\'s --max-images (GET /v1/model: limits.maxImages)' } as const;

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
  labels: { type: 'array', minItems: 2, uniqueItems: true, items: label, description: 'Class names in the order of the answers\' probabilities (default: order of first appearance in support)' },
  augment: {
    type: 'integer', minimum: 0,
    description: 'Augmented copies of each support image (random crop with zero padding, horizontal flip), as skd eval\'s --n_aug_support_samples; '
      + 'default 5 (or the server\'s --max-augment when lower), at most --max-augment (GET /v1/model: limits.maxAugment); 0 fits on the images as they are',
  },
  seed: { type: 'integer', minimum: 0, maximum: 0xffffffff, description: 'Seed of the augmentation (default 0): the same request gives the same answer' },
  head: { type: 'string', enum: [...HEAD_KINDS], description: 'logreg (default; multinomial logistic regression as in skd eval), proto (nearest class mean) or nn (nearest neighbour)' },
  C: { type: 'number', exclusiveMinimum: 0, maximum: 1e6, description: 'Inverse L2 regularisation of logreg (default 1)' },
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
  properties: { name: { type: 'string', pattern: CLASSIFIER_NAME_PATTERN, description: 'Classifier name: letters, digits, _ and -, at most 64' } },
} as const;

/**
 * The one saved-classifier format of skd: what `skd serve` stores (PUT /v1/classifiers/:name), what the page
 * saves to `classifier.json` and keeps in the browser, and what either imports from the other. Every record is
 * validated in full wherever it enters (the store's files at start, PUT, the page's file chooser), so a stored
 * classifier always predicts: a fitted head whose shape matches its labels and feature width, finite numbers,
 * and the SHA-256 of the model whose features it was fitted on. Browser-safe.
 */
import { headFromJSON, HEAD_KINDS, type Head, type HeadKind, type HeadState } from './heads/index.js';

export const RECORD_FORMAT = 'skd-classifier';
export const RECORD_VERSION = 1;
/** Names become file names in the folder store, so they are restricted to characters that cannot form a path. */
export const CLASSIFIER_NAME_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
const NAME = new RegExp(CLASSIFIER_NAME_PATTERN);
export const MAX_LABEL_LENGTH = 200;

/**
 * One support picture of a record: its label, a small data-URL thumbnail, and its raw feature rows: one row, or
 * `augment` rows (one per augmented copy) when the record was fitted with support augmentation.
 */
export interface SupportEntry {
  label: string;
  thumbnail?: string;
  features: number[];
}

export interface ClassifierRecord {
  format: typeof RECORD_FORMAT;
  version: typeof RECORD_VERSION;
  name: string;
  /** Class names in the order of the head's outputs. */
  labels: string[];
  /** The fitted head (infer/heads toJSON()). */
  head: HeadState;
  headKind: HeadKind;
  featureDim: number;
  /** SHA-256 of the model file the features came from; predictions with another model are refused. */
  modelSha256: string;
  supportImages: number;
  augment: number;
  seed: number;
  createdAt: string;
  /** Optional: the support pictures (the page keeps them so that classes can be edited and refitted). */
  support?: SupportEntry[];
}

/** A record that does not validate; `field` names the part at fault (for example "labels[2]" or "head"). */
export class RecordError extends Error {
  override name = 'RecordError';
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

export function isValidClassifierName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonNegativeInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function checkFiniteParameters(head: Record<string, unknown>): void {
  if (!isObject(head.parameters)) throw new RecordError('head.parameters', 'must be an object of numbers and arrays of numbers');
  for (const [key, value] of Object.entries(head.parameters)) {
    const values = Array.isArray(value) ? value : [value];
    const bad = values.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
    if (bad >= 0) throw new RecordError(`head.parameters.${key}${Array.isArray(value) ? `[${bad}]` : ''}`, `must be a finite number, got ${JSON.stringify(values[bad])}`);
  }
}

/**
 * Checks every field of a record and returns it typed; throws RecordError naming the first field at fault.
 * `name`, when given, is the name the record must carry (a store file's name).
 */
export function validateRecord(value: unknown, expected: { name?: string } = {}): ClassifierRecord {
  if (!isObject(value)) throw new RecordError('record', 'must be a JSON object');
  const r = value;
  if (r.format !== RECORD_FORMAT) throw new RecordError('format', `must be "${RECORD_FORMAT}", got ${JSON.stringify(r.format)}`);
  if (r.version !== RECORD_VERSION) throw new RecordError('version', `must be ${RECORD_VERSION}, got ${JSON.stringify(r.version)}`);
  if (!isValidClassifierName(r.name)) throw new RecordError('name', `must match ${CLASSIFIER_NAME_PATTERN}, got ${JSON.stringify(r.name)}`);
  if (expected.name !== undefined && r.name !== expected.name) throw new RecordError('name', `is ${JSON.stringify(r.name)}, expected ${JSON.stringify(expected.name)}`);

  if (!Array.isArray(r.labels)) throw new RecordError('labels', `must be an array of class names, got ${JSON.stringify(r.labels)}`);
  if (r.labels.length < 2) throw new RecordError('labels', `a classifier needs at least two classes; it has ${r.labels.length}`);
  const seen = new Set<string>();
  r.labels.forEach((label, i) => {
    if (typeof label !== 'string' || label.length === 0 || label.length > MAX_LABEL_LENGTH) {
      throw new RecordError(`labels[${i}]`, `must be a non-empty string of at most ${MAX_LABEL_LENGTH} characters, got ${JSON.stringify(label)}`);
    }
    if (seen.has(label)) throw new RecordError(`labels[${i}]`, `${JSON.stringify(label)} appears twice`);
    seen.add(label);
  });
  const labels = r.labels as string[];

  if (!(typeof r.featureDim === 'number' && Number.isInteger(r.featureDim) && r.featureDim >= 1)) {
    throw new RecordError('featureDim', `must be a positive integer, got ${JSON.stringify(r.featureDim)}`);
  }
  const featureDim = r.featureDim;
  if (typeof r.modelSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(r.modelSha256)) {
    throw new RecordError('modelSha256', 'must be the SHA-256 of the model file, 64 lowercase hex digits');
  }
  if (!HEAD_KINDS.includes(r.headKind as HeadKind)) throw new RecordError('headKind', `must be one of ${HEAD_KINDS.join(', ')}, got ${JSON.stringify(r.headKind)}`);
  if (!isObject(r.head)) throw new RecordError('head', `must be a fitted head (an object), got ${JSON.stringify(r.head)}`);
  const head = r.head;
  if (head.kind !== r.headKind) throw new RecordError('head.kind', `is ${JSON.stringify(head.kind)} but headKind is ${JSON.stringify(r.headKind)}`);
  if (head.numClasses !== labels.length) throw new RecordError('head.numClasses', `the head has ${JSON.stringify(head.numClasses)} classes but labels lists ${labels.length}`);
  if (head.dim !== featureDim) throw new RecordError('head.dim', `the head takes ${JSON.stringify(head.dim)} features but featureDim is ${featureDim}`);
  checkFiniteParameters(head);
  try {
    headFromJSON(head as unknown as HeadState);
  } catch (err) {
    throw new RecordError('head', (err as Error).message);
  }

  for (const key of ['supportImages', 'augment', 'seed'] as const) {
    if (!nonNegativeInt(r[key])) throw new RecordError(key, `must be a non-negative integer, got ${JSON.stringify(r[key])}`);
  }
  if (typeof r.createdAt !== 'string' || Number.isNaN(Date.parse(r.createdAt))) throw new RecordError('createdAt', 'must be an ISO 8601 date');

  if (r.support !== undefined) {
    if (!Array.isArray(r.support)) throw new RecordError('support', 'must be an array of support pictures');
    const counts = new Map(labels.map((l) => [l, 0]));
    r.support.forEach((entry, i) => {
      const field = `support[${i}]`;
      if (!isObject(entry)) throw new RecordError(field, 'must be an object { label, thumbnail?, features }');
      if (typeof entry.label !== 'string' || !counts.has(entry.label)) throw new RecordError(`${field}.label`, `must be one of labels, got ${JSON.stringify(entry.label)}`);
      counts.set(entry.label, counts.get(entry.label)! + 1);
      if (entry.thumbnail !== undefined && (typeof entry.thumbnail !== 'string' || !entry.thumbnail.startsWith('data:image/'))) {
        throw new RecordError(`${field}.thumbnail`, 'must be a data:image/ URL');
      }
      const features = entry.features;
      const length = Math.max(1, r.augment as number) * featureDim;
      if (!Array.isArray(features) || features.length !== length || features.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
        throw new RecordError(`${field}.features`, `must be ${length} finite numbers (${Math.max(1, r.augment as number)} row(s) of ${featureDim})`);
      }
    });
    for (const [label, n] of counts) if (n === 0) throw new RecordError('support', `class ${JSON.stringify(label)} has no support picture`);
  }
  return r as unknown as ClassifierRecord;
}

/** The record's fitted head, ready to predict (the record must have been validated). */
export function headOfRecord(record: ClassifierRecord): Head {
  return headFromJSON(record.head);
}

/** What listings show of a record (no head, no support). */
export interface ClassifierSummary {
  name: string;
  labels: string[];
  headKind: string;
  supportImages: number;
  augment: number;
  modelSha256: string;
  createdAt: string;
}

export function summarize(c: ClassifierRecord): ClassifierSummary {
  return { name: c.name, labels: c.labels, headKind: c.headKind, supportImages: c.supportImages, augment: c.augment, modelSha256: c.modelSha256, createdAt: c.createdAt };
}

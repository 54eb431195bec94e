/**
 * The user's classifier: named classes, each with support pictures (a thumbnail and the backbone's
 * feature row). The head is the evaluator's multinomial logistic regression (C = 1) fitted on the
 * L2-normalised support features, exactly as in few-shot evaluation; it is refitted whenever the
 * classes change, which takes milliseconds for a few dozen pictures. Saved and loaded as skd's one
 * classifier record (infer/classifier-record.ts), the format `skd serve` stores, so files go both ways.
 */
import {
  RECORD_FORMAT, RECORD_VERSION, RecordError, isValidClassifierName, validateRecord, type ClassifierRecord,
} from '../../infer/classifier-record.js';
import { createHead, headFromJSON, type Head, type HeadState } from '../../infer/heads/index.js';
import { l2NormalizeRows } from '../../infer/features.js';

/** The name a classifier made in the page gets (a record's name is also its file name in `skd serve`'s store). */
export const DEFAULT_CLASSIFIER_NAME = 'classifier';
/** Regularisation of the logistic-regression head, as in the evaluation protocol. */
export const HEAD_C = 1.0;
export const MIN_CLASSES = 2;
export const MIN_PICTURES_PER_CLASS = 1;
export const MAX_CLASS_NAME_LENGTH = 40;

export interface SupportPicture {
  id: string;
  /** A small JPEG data URL, for display. */
  thumbnail: string;
  /** The backbone's raw (not normalised) feature rows: one, or one per augmented copy. */
  features: Float32Array;
}

export interface ClassEntry {
  id: string;
  name: string;
  pictures: SupportPicture[];
}

export interface ModelIdentity {
  /** SHA-256 of the model file (as `skd serve` records it): features from another model mean nothing here. */
  sha256: string;
  featureDim: number;
  arch: string | null;
}

export interface ClassifierState {
  model: ModelIdentity;
  name: string;
  /** Augmented copies per support picture (0: the picture itself), fixed when the classifier is made. */
  augment: number;
  classes: ClassEntry[];
  /**
   * A head fitted elsewhere (a record from `skd serve`, which keeps no pictures); used until the classes change,
   * after which the head is fitted on this page's pictures.
   */
  importedHead: HeadState | null;
}

export type Readiness =
  | { kind: 'no-classes' }
  | { kind: 'too-few'; message: string }
  | { kind: 'ready' };

export function newId(): string {
  return Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
}

/** What stops the classifier from classifying, phrased for the user. */
export function readiness(state: ClassifierState): Readiness {
  if (state.importedHead) return { kind: 'ready' };
  const classes = state.classes;
  if (classes.length === 0) return { kind: 'no-classes' };
  const lacking = classes.filter((c) => c.pictures.length < MIN_PICTURES_PER_CLASS).map((c) => `“${c.name}”`);
  const parts: string[] = [];
  if (classes.length < MIN_CLASSES) parts.push(`create at least ${MIN_CLASSES} classes (you have ${classes.length})`);
  if (lacking.length > 0) parts.push(`add ${MIN_PICTURES_PER_CLASS === 1 ? 'a picture' : `${MIN_PICTURES_PER_CLASS} pictures`} to ${lacking.join(', ')}`);
  if (parts.length > 0) {
    const message = parts.join(' and ');
    return { kind: 'too-few', message: `Too few pictures to classify yet: ${message}.` };
  }
  return { kind: 'ready' };
}

/** Checks a new class name; returns the trimmed name or throws with a message for the user. */
export function checkClassName(state: ClassifierState, raw: string): string {
  const name = raw.trim();
  if (name.length === 0) throw new Error('Give the class a name.');
  if (name.length > MAX_CLASS_NAME_LENGTH) throw new Error(`Class names are at most ${MAX_CLASS_NAME_LENGTH} characters.`);
  if (state.classes.some((c) => c.name.toLowerCase() === name.toLowerCase())) throw new Error(`There is already a class named “${name}”.`);
  return name;
}

function normalisedCopy(rows: Float32Array, n: number, d: number): Float32Array {
  const copy = Float32Array.from(rows);
  l2NormalizeRows(copy, n, d);
  return copy;
}

/** The imported head, else the logistic-regression head fitted on every support picture; the state must be ready. */
export function fitHead(state: ClassifierState): Head {
  if (state.importedHead) return headFromJSON(state.importedHead);
  const d = state.model.featureDim;
  const n = state.classes.reduce((sum, c) => sum + c.pictures.reduce((k, p) => k + p.features.length / d, 0), 0);
  const x = new Float32Array(n * d);
  const labels = new Int32Array(n);
  let i = 0;
  state.classes.forEach((c, label) => {
    for (const picture of c.pictures) {
      x.set(picture.features, i * d);
      labels.fill(label, i, i + picture.features.length / d);
      i += picture.features.length / d;
    }
  });
  l2NormalizeRows(x, n, d);
  const head = createHead('logreg', { C: HEAD_C });
  head.fit(x, n, d, labels, state.classes.length);
  return head;
}

/** Probabilities of each class (in state.classes order) for one raw feature row. */
export function classProbabilities(head: Head, features: Float32Array, featureDim: number): Float32Array {
  return head.predictProba(normalisedCopy(features, 1, featureDim), 1);
}

// ---- The classifier record: saved to and loaded from a file, kept in the browser ----

/** The state as a classifier record (the state must be ready). */
export function toRecord(state: ClassifierState, head: Head = fitHead(state)): ClassifierRecord {
  const support = state.classes.flatMap((c) => c.pictures.map((p) => ({
    label: c.name, ...(p.thumbnail ? { thumbnail: p.thumbnail } : {}), features: Array.from(p.features),
  })));
  return {
    format: RECORD_FORMAT, version: RECORD_VERSION, name: state.name, labels: state.classes.map((c) => c.name),
    head: head.toJSON(), headKind: head.kind, featureDim: state.model.featureDim, modelSha256: state.model.sha256,
    supportImages: support.reduce((k, p) => k + p.features.length / state.model.featureDim, 0), augment: state.augment, seed: 0,
    createdAt: new Date().toISOString(),
    ...(state.importedHead ? {} : { support }),
  };
}

export function serializeClassifier(state: ClassifierState): string {
  return JSON.stringify(toRecord(state));
}

/**
 * Reads a classifier record (a file saved here, `skd serve`'s GET /v1/classifiers/NAME/record, or a file of its
 * store) for the given model; throws an Error with a message for the user when it does not fit.
 */
export function parseClassifier(text: string, model: ModelIdentity, fileName: string): ClassifierState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`“${fileName}” is not a saved classifier (it is not JSON).`);
  }
  let record: ClassifierRecord;
  try {
    record = validateRecord(parsed);
  } catch (err) {
    if (err instanceof RecordError) throw new Error(`“${fileName}” is not a usable classifier: ${err.message}.`);
    throw err;
  }
  if (record.featureDim !== model.featureDim || record.modelSha256 !== model.sha256) {
    throw new Error(
      `“${fileName}” was made with another model (sha256 ${record.modelSha256.slice(0, 12)}…, ${record.featureDim} features); ` +
        'load that model first, or build the classes again with this one.',
    );
  }
  const classes: ClassEntry[] = record.labels.map((name) => ({ id: newId(), name, pictures: [] }));
  for (const entry of record.support ?? []) {
    classes[record.labels.indexOf(entry.label)]!.pictures.push({ id: newId(), thumbnail: entry.thumbnail ?? '', features: Float32Array.from(entry.features) });
  }
  return { model, name: record.name, augment: record.augment, classes, importedHead: record.support ? null : record.head };
}

/** The page's working state kept in the browser between visits (it may not be ready, so it is no record). */
export function serializeState(state: ClassifierState): string {
  return JSON.stringify({
    name: state.name, augment: state.augment, importedHead: state.importedHead,
    classes: state.classes.map((c) => ({ name: c.name, pictures: c.pictures.map((p) => ({ thumbnail: p.thumbnail, features: Array.from(p.features) })) })),
  });
}

export function parseState(text: string, model: ModelIdentity): ClassifierState {
  const saved = JSON.parse(text) as { name?: unknown; augment?: unknown; importedHead?: HeadState | null; classes?: { name: string; pictures: { thumbnail: string; features: number[] }[] }[] };
  if (!saved || !Array.isArray(saved.classes)) throw new Error('the kept classes are malformed');
  const augment = typeof saved.augment === 'number' && Number.isInteger(saved.augment) && saved.augment >= 0 ? saved.augment : 0;
  const classes = saved.classes.map((c) => ({
    id: newId(), name: String(c.name),
    pictures: c.pictures.filter((p) => Array.isArray(p.features) && p.features.length === Math.max(1, augment) * model.featureDim)
      .map((p) => ({ id: newId(), thumbnail: typeof p.thumbnail === 'string' ? p.thumbnail : '', features: Float32Array.from(p.features) })),
  }));
  const name = isValidClassifierName(saved.name) ? saved.name : DEFAULT_CLASSIFIER_NAME;
  return { model, name, augment, classes, importedHead: saved.importedHead ?? null };
}

/**
 * The user's classifier: named classes, each with support pictures (a thumbnail and the backbone's
 * feature row). The head is the evaluator's multinomial logistic regression (C = 1) fitted on the
 * L2-normalised support features, exactly as in few-shot evaluation; it is refitted whenever the
 * classes change, which takes milliseconds for a few dozen pictures.
 */
import { createHead } from '../../infer/heads/index.js';
import type { Head } from '../../infer/heads/types.js';
import { l2NormalizeRows } from '../../infer/features.js';

export const CLASSIFIER_FORMAT = 'skd-web-classifier';
export const CLASSIFIER_VERSION = 1;
/** Regularisation of the logistic-regression head, as in the evaluation protocol. */
export const HEAD_C = 1.0;
export const MIN_CLASSES = 2;
export const MIN_PICTURES_PER_CLASS = 1;
export const MAX_CLASS_NAME_LENGTH = 40;

export interface SupportPicture {
  id: string;
  /** A small JPEG data URL, for display. */
  thumbnail: string;
  /** The backbone's raw (not normalised) feature row. */
  features: Float32Array;
}

export interface ClassEntry {
  id: string;
  name: string;
  pictures: SupportPicture[];
}

export interface ModelIdentity {
  /** A hash of the model file's bytes: features from another model mean nothing to this classifier. */
  id: string;
  featureDim: number;
  arch: string | null;
}

export interface ClassifierState {
  model: ModelIdentity;
  classes: ClassEntry[];
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

/** Fits the logistic-regression head on every support picture; the state must be ready. */
export function fitHead(state: ClassifierState): Head {
  const d = state.model.featureDim;
  const rows = state.classes.flatMap((c) => c.pictures);
  const x = new Float32Array(rows.length * d);
  const labels = new Int32Array(rows.length);
  let i = 0;
  state.classes.forEach((c, label) => {
    for (const picture of c.pictures) {
      x.set(picture.features, i * d);
      labels[i++] = label;
    }
  });
  l2NormalizeRows(x, rows.length, d);
  const head = createHead('logreg', { C: HEAD_C });
  head.fit(x, rows.length, d, labels, state.classes.length);
  return head;
}

/** Probabilities of each class (in state.classes order) for one raw feature row. */
export function classProbabilities(head: Head, features: Float32Array, featureDim: number): Float32Array {
  return head.predictProba(normalisedCopy(features, 1, featureDim), 1);
}

// ---- Saving to and loading from a file (JSON) ----

interface SavedClassifier {
  format: typeof CLASSIFIER_FORMAT;
  version: typeof CLASSIFIER_VERSION;
  model: ModelIdentity;
  head: { kind: 'logreg'; C: number };
  classes: { name: string; pictures: { thumbnail: string; features: number[] }[] }[];
}

export function serializeClassifier(state: ClassifierState): string {
  const saved: SavedClassifier = {
    format: CLASSIFIER_FORMAT,
    version: CLASSIFIER_VERSION,
    model: state.model,
    head: { kind: 'logreg', C: HEAD_C },
    classes: state.classes.map((c) => ({
      name: c.name,
      pictures: c.pictures.map((p) => ({ thumbnail: p.thumbnail, features: Array.from(p.features) })),
    })),
  };
  return JSON.stringify(saved);
}

/** Parses a saved classifier for the given model; throws an Error with a message for the user when it does not fit. */
export function parseClassifier(text: string, model: ModelIdentity, fileName: string): ClassifierState {
  let saved: Partial<SavedClassifier>;
  try {
    saved = JSON.parse(text) as Partial<SavedClassifier>;
  } catch {
    throw new Error(`“${fileName}” is not a saved classifier (it is not JSON).`);
  }
  if (!saved || saved.format !== CLASSIFIER_FORMAT || !Array.isArray(saved.classes) || !saved.model) {
    throw new Error(`“${fileName}” is not a saved classifier (expected "format": "${CLASSIFIER_FORMAT}").`);
  }
  if (saved.version !== CLASSIFIER_VERSION) throw new Error(`“${fileName}” has version ${String(saved.version)}; this page reads version ${CLASSIFIER_VERSION}.`);
  if (saved.model.featureDim !== model.featureDim || saved.model.id !== model.id) {
    throw new Error(
      `“${fileName}” was made with another model (${saved.model.arch ?? 'unknown'}, ${saved.model.featureDim} features); ` +
        'load that model first, or build the classes again with this one.',
    );
  }
  const classes: ClassEntry[] = saved.classes.map((c, ci) => {
    if (typeof c?.name !== 'string' || !Array.isArray(c.pictures)) throw new Error(`“${fileName}”: class ${ci + 1} is malformed.`);
    return {
      id: newId(),
      name: c.name,
      pictures: c.pictures.map((p, pi) => {
        if (!Array.isArray(p?.features) || p.features.length !== model.featureDim || p.features.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
          throw new Error(`“${fileName}”: picture ${pi + 1} of “${c.name}” does not have ${model.featureDim} feature values.`);
        }
        return { id: newId(), thumbnail: typeof p.thumbnail === 'string' && p.thumbnail.startsWith('data:image/') ? p.thumbnail : '', features: Float32Array.from(p.features) };
      }),
    };
  });
  return { model, classes };
}

// ---- A fingerprint of the model file, the key under which its classifier is kept ----

/** FNV-1a over the bytes with two seeds (64 bits) plus the length; the same in every context (crypto.subtle needs https). */
export function modelFingerprint(bytes: Uint8Array): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x01000193 + 2);
  }
  const hex = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
  return `${hex(h1)}${hex(h2)}-${bytes.length.toString(16)}`;
}

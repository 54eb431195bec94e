/** The few-shot heads behind one interface (browser-safe). */
import { LogisticRegressionHead } from './logreg.js';
import { NearestNeighborHead } from './nn.js';
import { PrototypeHead } from './proto.js';
import { HEAD_KINDS, type Head, type HeadKind, type HeadState } from './types.js';

export type { Head, HeadKind, HeadState } from './types.js';
export { HEAD_KINDS } from './types.js';
export { LogisticRegressionHead } from './logreg.js';
export { PrototypeHead } from './proto.js';
export { NearestNeighborHead } from './nn.js';

export interface HeadOptions {
  /** logreg: inverse L2 penalty (default 1). */
  C?: number;
  /** logreg: iteration cap (default 1000). */
  maxIter?: number;
  /** logreg: gradient tolerance relative to max(1, |f|) (default 1e-8). */
  tol?: number;
}

export function createHead(kind: HeadKind, opts: HeadOptions = {}): Head {
  switch (kind) {
    case 'logreg': return new LogisticRegressionHead(opts);
    case 'proto': return new PrototypeHead();
    case 'nn': return new NearestNeighborHead();
    default: throw new RangeError(`unknown head '${String(kind)}'; expected one of ${HEAD_KINDS.join(', ')}`);
  }
}

/** Rebuilds a fitted head from `toJSON()` output. */
export function headFromJSON(state: HeadState): Head {
  if (typeof state !== 'object' || state === null) throw new RangeError('head state must be an object');
  if (state.version !== 1) throw new RangeError(`head state version ${String(state.version)} is not supported (expected 1)`);
  if (!Number.isInteger(state.numClasses) || state.numClasses < 2 || !Number.isInteger(state.dim) || state.dim < 1) {
    throw new RangeError('head state: numClasses must be an integer >= 2 and dim a positive integer');
  }
  switch (state.kind) {
    case 'logreg': return LogisticRegressionHead.fromJSON(state);
    case 'proto': return PrototypeHead.fromJSON(state);
    case 'nn': return NearestNeighborHead.fromJSON(state);
    default: throw new RangeError(`head state: unknown kind '${String((state as { kind: unknown }).kind)}'`);
  }
}

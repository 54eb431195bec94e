/**
 * Reads a PyTorch state_dict stored as JSON (nested number arrays, as in
 * test/fixtures/models/resnet12_w8-16-32-64_reference.json) into NamedWeights. Buffers that carry no
 * numbers the forward pass needs (`num_batches_tracked`) are skipped.
 */
import type { NamedWeights } from './spec.js';

type Nested = number | Nested[];

/** Flattens a nested array, checking that it is rectangular; returns its data and shape. */
export function flattenNested(value: Nested, what: string): { data: Float32Array; shape: number[] } {
  const shape: number[] = [];
  let probe: Nested = value;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe.length > 0 ? probe[0] : 0;
  }
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  let offset = 0;
  const walk = (v: Nested, depth: number): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new Error(`${what}: expected a number at depth ${depth}`);
      data[offset++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) throw new Error(`${what}: not a rectangular array of shape [${shape.join(', ')}]`);
    for (const item of v) walk(item, depth + 1);
  };
  walk(value, 0);
  return { data, shape };
}

export function loadReferenceStateDict(json: { state_dict: Record<string, unknown> }): NamedWeights {
  if (!json || typeof json.state_dict !== 'object' || json.state_dict === null) throw new Error('expected an object with a "state_dict" field');
  const weights: NamedWeights = new Map();
  for (const [name, value] of Object.entries(json.state_dict)) {
    if (name.endsWith('num_batches_tracked')) continue;
    weights.set(name, flattenNested(value as Nested, name));
  }
  return weights;
}

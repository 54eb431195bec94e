/** Reads test/fixtures/train_step/*.json: tensors as {shape, f32_base64}, PyTorch layout. */
import { readFileSync } from 'node:fs';
import type { NamedWeights } from '../../models/spec.js';

export interface FixtureTensor { data: Float32Array; shape: number[] }
interface RawTensor { shape: number[]; f32_base64: string }

function decode(t: RawTensor): FixtureTensor {
  const bytes = Buffer.from(t.f32_base64, 'base64');
  const data = new Float32Array(bytes.length / 4);
  new Uint8Array(data.buffer).set(bytes);
  return { data, shape: t.shape };
}

function named(o: Record<string, RawTensor>): NamedWeights {
  return new Map(Object.entries(o).map(([k, v]) => [k, decode(v)]));
}

export interface TrainStepFixture {
  widths: number[];
  numClasses: number;
  stateDict: NamedWeights;
  teacherStateDict?: NamedWeights;
  /** NCHW, normalised. */
  x: FixtureTensor;
  y?: number[];
  /** Keep masks (0/1) after blocks 1..4, NCHW over the network's rows. */
  masks: FixtureTensor[];
  teacherLogits?: FixtureTensor;
  scalars: Record<string, number>;
  grads: NamedWeights;
  runningAfter?: NamedWeights;
  afterSgd?: NamedWeights;
}

export function readTrainStepFixture(path: string): TrainStepFixture {
  const d = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const scalars: Record<string, number> = {};
  for (const [k, v] of Object.entries(d)) if (typeof v === 'number') scalars[k] = v;
  return {
    widths: d.widths as number[],
    numClasses: d.n_cls as number,
    stateDict: named(d.state_dict as Record<string, RawTensor>),
    teacherStateDict: d.teacher_state_dict ? named(d.teacher_state_dict as Record<string, RawTensor>) : undefined,
    x: decode(d.x as RawTensor),
    y: d.y as number[] | undefined,
    masks: (d.masks as RawTensor[]).map(decode),
    teacherLogits: d.teacher_logits ? decode(d.teacher_logits as RawTensor) : undefined,
    scalars,
    grads: named(d.grads as Record<string, RawTensor>),
    runningAfter: d.running_after ? named(d.running_after as Record<string, RawTensor>) : undefined,
    afterSgd: d.after_sgd ? named(d.after_sgd as Record<string, RawTensor>) : undefined,
  };
}

/** The largest |a - b| over the largest |b| (0 for two zero tensors). */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (Number.isNaN(diff)) return Infinity;
  return scale === 0 ? diff : diff / scale;
}

/**
 * The teacher of a Gen-1 run: the network description and weights from a checkpoint written by
 * `skd train gen0` (or an earlier `skd train gen1` generation).
 */
import { UserError } from '../data/errors.js';
import type { ModelSpec, NamedWeights } from '../models/spec.js';
import { readCheckpoint } from './checkpoint.js';
import type { TrainHooks } from './progress.js';

export interface TeacherSource {
  spec: ModelSpec;
  /** PyTorch-layout weights, running statistics included. */
  weights: NamedWeights;
  /** Generation of the teacher checkpoint (0 for Gen-0). */
  generation: number;
}

export async function loadTeacher(path: string, hooks: TrainHooks = {}): Promise<TeacherSource> {
  if (path.toLowerCase().endsWith('.onnx')) {
    throw new UserError(`${path}: ONNX teachers are not supported yet; give the teacher as a checkpoint written by skd train (gen<N>.safetensors)`);
  }
  const ckpt = await readCheckpoint(path);
  if (!ckpt.complete) hooks.log?.(`note: the teacher ${path} is from epoch ${ckpt.epoch} of a run that did not finish`);
  return { spec: ckpt.spec, weights: ckpt.weights, generation: ckpt.generation };
}

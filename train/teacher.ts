/**
 * The teacher of a Gen-1 run: the network description and weights from a checkpoint written by
 * `skd train gen0` (or an earlier `skd train gen1` generation), or read back from an ONNX graph.
 */
import { UserError } from '../data/errors.js';
import { teacherFromOnnx, type OnnxTeacherHints } from './onnx-teacher.js';
import type { ModelSpec, NamedWeights } from '../models/spec.js';
import { isPthPath, readPthCheckpoint } from '../torch/checkpoint.js';
import { readCheckpoint } from './checkpoint.js';
import type { TrainHooks } from './progress.js';

export interface TeacherSource {
  spec: ModelSpec;
  /** PyTorch-layout weights, running statistics included. */
  weights: NamedWeights;
  /** Generation of the teacher checkpoint (0 for Gen-0). */
  generation: number;
  /** The training configuration recorded with the teacher (checkpoints; ONNX metadata when present). */
  config?: Record<string, unknown>;
}

/**
 * A checkpoint, a PyTorch .pth of the reference's training scripts (torch/checkpoint.ts; its image size is its
 * dataset's, else `hints.imageSize`), or an ONNX graph (by its .onnx extension; see onnx-teacher.ts, which uses `hints`).
 */
export async function loadTeacher(path: string, hooks: TrainHooks = {}, hints?: OnnxTeacherHints): Promise<TeacherSource> {
  if (isPthPath(path)) {
    const p = readPthCheckpoint(path, { imageSize: hints?.imageSize });
    const spec = p.spec;
    hooks.log?.(`teacher ${path}: PyTorch ${p.format} format, ${p.dtype}, ${spec.arch} widths ${spec.widths.join('-')}, ${spec.numClasses} classes`);
    for (const n of p.notes) hooks.log?.(`note: ${n}`);
    return { spec, weights: p.weights, generation: 0, config: p.config };
  }
  if (path.toLowerCase().endsWith('.onnx')) {
    if (!hints) throw new UserError(`${path}: an ONNX teacher needs the run's image size and classes`);
    const t = await teacherFromOnnx(path, hints);
    for (const n of t.notes) hooks.log?.(n);
    return t;
  }
  const ckpt = await readCheckpoint(path);
  if (!ckpt.complete) hooks.log?.(`note: the teacher ${path} is from epoch ${ckpt.epoch} of a run that did not finish`);
  return { spec: ckpt.spec, weights: ckpt.weights, generation: ckpt.generation, config: ckpt.config };
}

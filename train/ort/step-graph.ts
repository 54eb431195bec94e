/**
 * One training step as an ONNX graph: the network in training mode (network-graph.ts), the SKD loss and its
 * gradient with respect to the logits, and the reverse pass. SGD runs outside the graph (train/ort/sgd.ts).
 *
 * Gen-0: rows [x, x90, x180, x270]; L = CE(z, onehot(y)) + gamma * BCEWithLogits(r, onehot(rot)), means over
 * all rows. dz = (softmax(z) - t) / N, dr = gamma * (sigmoid(r) - t_rot) / (4N).
 * Gen-1: rows [x; x180], the teacher's logits an input; L = T^2 / B * sum KL(pt || ps) + gamma / 3 * mean ||z180 - z||,
 * dz = T / B * (ps - pt) on the unrotated rows, and the distance term's d / ||d|| / B spread over both halves.
 */
import type { ModelSpec } from '../../models/spec.js';
import { TensorDataType, type ModelProtoObject } from '../../proto/types.js';
import { GraphBuilder } from './graph-builder.js';
import type { ConvAlgorithm } from './convolution.js';
import { buildNetworkGraph, type MaskInput } from './network-graph.js';

export type StepLoss =
  | { kind: 'gen0'; gamma: number }
  | { kind: 'gen1'; gamma: number; temperature: number };

export interface StepGraph {
  model: ModelProtoObject;
  /** Rows of the network's input (4B for Gen-0, 2B for Gen-1). */
  rows: number;
  params: { name: string; shape: number[] }[];
  running: { name: string; shape: number[] }[];
  masks: MaskInput[];
  /** Output "grad:<param>" for each of these parameters. */
  gradients: string[];
  /** Scalar outputs: "loss" and the parts (ce, ss or kd, l2). */
  parts: string[];
  /** Bytes of the float32 outputs of the network's forward nodes for these rows (what the memory estimate scales). */
  activationBytes: number;
}

/** Builds the step graph for a batch of `batch` unrotated images. */
export function buildStepGraph(spec: ModelSpec, batch: number, loss: StepLoss, conv: ConvAlgorithm = 'winograd'): StepGraph {
  const g = new GraphBuilder();
  const rows = loss.kind === 'gen0' ? 4 * batch : 2 * batch;
  const outputs = loss.kind === 'gen0' ? [spec.outputs.logits, spec.outputs.rot_logits] : [spec.outputs.logits];
  const net = buildNetworkGraph(g, spec, rows, outputs, conv);
  const z = net.value(spec.outputs.logits);
  const classes = net.shape(spec.outputs.logits)[1];
  const sumAll = (v: string) => g.op('ReduceSum', [v], { keepdims: 0 });
  const parts: string[] = ['loss'];
  if (loss.kind === 'gen0') {
    const targets = g.input('targets', [rows, classes]);
    const logProb = g.op('LogSoftmax', [z], { axis: 1 });
    const ce = g.op('Mul', [sumAll(g.op('Mul', [targets, logProb])), g.scalar(-1 / rows)]);
    const r = net.value(spec.outputs.rot_logits);
    const rotTargets = g.tensor('rot_targets', [rows, 4], rotationTargets(batch));
    const ss = g.op('ReduceMean', [g.op('Sub', [g.op('Softplus', [r]), g.op('Mul', [r, rotTargets])])], { keepdims: 0 });
    g.output('loss', g.op('Add', [ce, g.op('Mul', [ss, g.scalar(loss.gamma)])]), []);
    g.output('ce', ce, []);
    g.output('ss', ss, []);
    parts.push('ce', 'ss');
    net.seedGradient(spec.outputs.logits, g.op('Mul', [g.op('Sub', [g.op('Exp', [logProb]), targets]), g.scalar(1 / rows)]));
    net.seedGradient(spec.outputs.rot_logits, g.op('Mul', [g.op('Sub', [g.op('Sigmoid', [r]), rotTargets]), g.scalar(loss.gamma / (rows * 4))]));
    g.output('rot_logits', r, [rows, 4]);
  } else {
    const t = loss.temperature;
    const teacher = g.input('teacher_logits', [batch, classes]);
    const student = g.op('Slice', [z, g.ints([0]), g.ints([batch]), g.ints([0])]);
    const student180 = g.op('Slice', [z, g.ints([batch]), g.ints([rows]), g.ints([0])]);
    const invT = g.scalar(1 / t);
    const logPt = g.op('LogSoftmax', [g.op('Mul', [teacher, invT])], { axis: 1 });
    const pt = g.op('Exp', [logPt]);
    const logPs = g.op('LogSoftmax', [g.op('Mul', [student, invT])], { axis: 1 });
    const kd = g.op('Mul', [sumAll(g.op('Mul', [pt, g.op('Sub', [logPt, logPs])])), g.scalar((t * t) / batch)]);
    const diff = g.op('Sub', [student180, student]);
    const squares = g.op('ReduceSum', [g.op('Mul', [diff, diff]), g.ints([1])], { keepdims: 1 });
    const norms = g.op('Sqrt', [g.op('Max', [squares, g.scalar(1e-24)])]);
    const l2 = g.op('ReduceMean', [norms], { keepdims: 0 });
    g.output('loss', g.op('Add', [kd, g.op('Mul', [l2, g.scalar(loss.gamma / 3)])]), []);
    g.output('kd', kd, []);
    g.output('l2', l2, []);
    parts.push('kd', 'l2');
    const dKd = g.op('Mul', [g.op('Sub', [g.op('Exp', [logPs]), pt]), g.scalar(t / batch)]);
    // d mean||d|| / d d = d / ||d|| / B where the norm is above the floor (the floor's gradient is 0 below it).
    const live = g.op('Cast', [g.op('Greater', [squares, g.scalar(1e-24)])], { to: TensorDataType.FLOAT });
    const dDiff = g.op('Mul', [g.op('Div', [diff, norms]), g.op('Mul', [live, g.scalar(loss.gamma / 3 / batch)])]);
    net.seedGradient(spec.outputs.logits, g.op('Concat', [g.op('Sub', [dKd, dDiff]), dDiff], { axis: 0 }));
  }
  g.output('logits', z, [rows, classes]);
  const grads = net.backward();
  const gradients: string[] = [];
  for (const p of net.params) {
    const grad = grads.get(p.name);
    if (!grad) continue;
    g.output(`grad:${p.name}`, grad, p.shape);
    gradients.push(p.name);
  }
  let activationBytes = 0;
  for (const n of spec.nodes) {
    const shape = net.shape(n.name);
    if (shape) activationBytes += 4 * shape.reduce((a, b) => a * b, 1);
  }
  return { model: g.model(`skd_${spec.arch}_${loss.kind}_step`), rows, params: net.params, running: net.running, masks: net.masks, gradients, parts, activationBytes };
}

/** One-hot rotation targets [4B, 4]: rows k*B .. (k+1)*B - 1 are rotation k. */
export function rotationTargets(batch: number): Float32Array {
  const out = new Float32Array(4 * batch * 4);
  for (let k = 0; k < 4; k++) for (let i = 0; i < batch; i++) out[(k * batch + i) * 4 + k] = 1;
  return out;
}

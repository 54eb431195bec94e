/**
 * Training checkpoints: one safetensors file (docs/checkpoint-format.md). Model weights under their PyTorch
 * names, SGD momentum buffers under `optimizer.momentum.<name>`, everything else as JSON strings in
 * `__metadata__`. No TensorFlow.js import: the exporter and the evaluator read checkpoints without it.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../data/atomic-write.js';
import { UserError } from '../data/errors.js';
import type { RngState } from '../data/rng.js';
import { specParameters, type ModelSpec, type NamedWeights } from '../models/spec.js';
import { decodeSafetensors, encodeSafetensors, type F32Tensor } from './safetensors.js';
import type { EpochRecord } from './types.js';

export const CHECKPOINT_FORMAT = 'skd-checkpoint';
export const CHECKPOINT_FORMAT_VERSION = 1;
const MOMENTUM_PREFIX = 'optimizer.momentum.';

export interface OptimizerState {
  kind: 'sgd';
  /** Momentum buffer per trainable parameter, PyTorch layout, keyed by parameter name. */
  momentum: NamedWeights;
  momentumFactor: number;
  weightDecay: number;
  /** The learning rate of the last completed step. */
  learningRate: number;
}

export interface Checkpoint {
  formatVersion: number;
  spec: ModelSpec;
  /** Parameters and batch-norm running statistics in PyTorch layout. */
  weights: NamedWeights;
  optimizer?: OptimizerState;
  /** Completed epochs of this generation (the next epoch to run is epoch + 1). */
  epoch: number;
  /** Optimiser steps taken in this generation. */
  step: number;
  /** The training stream's state after `epoch` epochs. */
  rng: RngState;
  /** Training-mode forward calls so far (drives the DropBlock schedule and dropout masks). */
  dropBlockCalls: number;
  /** The full resolved configuration of the run that wrote it. */
  config: Record<string, unknown>;
  /** 0 for Gen-0, 1 for Gen-1, ... */
  generation: number;
  /** Whether the run reached its last epoch. */
  complete: boolean;
  history: EpochRecord[];
}

/** Writes a checkpoint atomically and durably (data/atomic-write.ts: temporary file, fsync, rename, fsync of the folder). */
export async function writeCheckpoint(path: string, ckpt: Checkpoint): Promise<void> {
  const tensors = new Map<string, F32Tensor>();
  for (const [name, t] of ckpt.weights) tensors.set(name, t);
  if (ckpt.optimizer) for (const [name, t] of ckpt.optimizer.momentum) tensors.set(MOMENTUM_PREFIX + name, t);
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    format_version: String(CHECKPOINT_FORMAT_VERSION),
    generation: String(ckpt.generation),
    epoch: String(ckpt.epoch),
    step: String(ckpt.step),
    complete: String(ckpt.complete),
    drop_block_calls: String(ckpt.dropBlockCalls),
    spec: JSON.stringify(ckpt.spec),
    config: JSON.stringify(ckpt.config),
    rng: JSON.stringify(ckpt.rng),
    history: JSON.stringify(ckpt.history),
  };
  if (ckpt.optimizer) {
    const { kind, momentumFactor, weightDecay, learningRate } = ckpt.optimizer;
    metadata.optimizer = JSON.stringify({ kind, momentum: momentumFactor, weight_decay: weightDecay, lr: learningRate });
  }
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

function parseJsonField<T>(path: string, metadata: Record<string, string>, key: string): T {
  const raw = metadata[key];
  if (raw === undefined) throw new UserError(`${path}: checkpoint metadata lacks "${key}"`);
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new UserError(`${path}: checkpoint metadata "${key}" is not valid JSON`);
  }
}

/** A JSON field that must hold an object (not null, a list or a number). */
function parseObjectField(path: string, metadata: Record<string, string>, key: string): Record<string, unknown> {
  const v = parseJsonField<unknown>(path, metadata, key);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UserError(`${path}: checkpoint metadata "${key}" should be a JSON object, got ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v}`);
  return v as Record<string, unknown>;
}

function parseIntField(path: string, metadata: Record<string, string>, key: string, fallback?: number): number {
  const raw = metadata[key];
  if (raw === undefined && fallback !== undefined) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) throw new UserError(`${path}: checkpoint metadata "${key}" should be a non-negative integer, got ${JSON.stringify(raw)}`);
  return v;
}

/** Reads and validates a checkpoint; any problem is a UserError naming the file. */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `checkpoint not found: ${path}` : `cannot read checkpoint ${path}: ${(err as Error).message}`);
  }
  let contents;
  try {
    contents = decodeSafetensors(buf);
  } catch (err) {
    throw new UserError(`${path} is not a readable safetensors checkpoint: ${(err as Error).message}`);
  }
  const { metadata, tensors } = contents;
  if (metadata.format !== CHECKPOINT_FORMAT) throw new UserError(`${path} is a safetensors file but not an skd checkpoint (metadata format is ${JSON.stringify(metadata.format)}, expected "${CHECKPOINT_FORMAT}")`);
  const formatVersion = parseIntField(path, metadata, 'format_version');
  if (formatVersion > CHECKPOINT_FORMAT_VERSION) throw new UserError(`${path}: checkpoint format version ${formatVersion} is newer than this build reads (${CHECKPOINT_FORMAT_VERSION})`);
  const spec = parseJsonField<ModelSpec>(path, metadata, 'spec');
  if (!spec || !Array.isArray(spec.nodes) || typeof spec.arch !== 'string') throw new UserError(`${path}: checkpoint metadata "spec" is not a model description`);

  const weights: NamedWeights = new Map();
  const momentum: NamedWeights = new Map();
  for (const [name, t] of tensors) {
    if (name.startsWith(MOMENTUM_PREFIX)) momentum.set(name.slice(MOMENTUM_PREFIX.length), t);
    else weights.set(name, t);
  }
  for (const p of specParameters(spec)) {
    const w = weights.get(p.name);
    if (!w) throw new UserError(`${path}: checkpoint lacks tensor ${p.name} that its model description needs`);
    if (w.shape.join(',') !== p.shape.join(',')) throw new UserError(`${path}: tensor ${p.name} has shape [${w.shape}], its model description says [${p.shape}]`);
  }

  let optimizer: OptimizerState | undefined;
  if (metadata.optimizer !== undefined) {
    const o = parseJsonField<{ kind?: string; momentum?: number; weight_decay?: number; lr?: number }>(path, metadata, 'optimizer');
    optimizer = { kind: 'sgd', momentum, momentumFactor: o.momentum ?? 0.9, weightDecay: o.weight_decay ?? 0, learningRate: o.lr ?? 0 };
  }
  return {
    formatVersion,
    spec,
    weights,
    optimizer,
    epoch: parseIntField(path, metadata, 'epoch'),
    step: parseIntField(path, metadata, 'step', 0),
    rng: parseJsonField<RngState>(path, metadata, 'rng'),
    dropBlockCalls: parseIntField(path, metadata, 'drop_block_calls', 0),
    config: parseObjectField(path, metadata, 'config'),
    generation: parseIntField(path, metadata, 'generation', 0),
    complete: metadata.complete === 'true',
    history: metadata.history === undefined ? [] : parseJsonField<EpochRecord[]>(path, metadata, 'history'),
  };
}

/**
 * Describes how two model descriptions differ (architecture, widths, classes, image size, parameter shapes),
 * or returns undefined when they describe the same network.
 */
export function describeSpecMismatch(expected: ModelSpec, actual: ModelSpec): string | undefined {
  const diffs: string[] = [];
  if (expected.arch !== actual.arch) diffs.push(`architecture ${actual.arch} instead of ${expected.arch}`);
  if (expected.widths.join('-') !== actual.widths.join('-')) diffs.push(`widths ${actual.widths.join('-')} instead of ${expected.widths.join('-')}`);
  if (expected.numClasses !== actual.numClasses) diffs.push(`${actual.numClasses} classes instead of ${expected.numClasses}`);
  if (expected.imageSize !== actual.imageSize) diffs.push(`image size ${actual.imageSize} instead of ${expected.imageSize}`);
  if (diffs.length === 0) {
    const a = specParameters(expected);
    const b = new Map(specParameters(actual).map((p) => [p.name, p.shape.join(',')]));
    for (const p of a) {
      if (b.get(p.name) !== p.shape.join(',')) {
        diffs.push(`parameter ${p.name} ${b.has(p.name) ? `has shape [${b.get(p.name)}] instead of [${p.shape}]` : 'is missing'}`);
        break;
      }
    }
    if (diffs.length === 0 && JSON.stringify(expected.nodes) !== JSON.stringify(actual.nodes)) diffs.push('a different layer graph (regularisation settings or layer order)');
  }
  return diffs.length ? diffs.join('; ') : undefined;
}

/** Pieces both generations use before their loop: data, the output folder, and picking up a checkpoint. */
import { readdirSync, unlinkSync } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isAtomicTempName } from '../data/atomic-write.js';
import { datasetNormalization, loadDataset } from '../data/datasets.js';
import { UserError } from '../data/errors.js';
import { Rng } from '../data/rng.js';
import type { ImageSet, Normalization } from '../data/types.js';
import type { ModelSpec } from '../models/spec.js';
import { describeSpecMismatch, readCheckpoint, type Checkpoint } from './checkpoint.js';
import { RESULT_AFFECTING_KEYS, type TrainConfig } from './config.js';
import type { LoopState } from './loop.js';
import { rewriteLogForResume, type TrainHooks } from './progress.js';

export interface TrainData {
  train: ImageSet;
  val?: ImageSet;
  normalization: Normalization;
}

/** The training split, and the val split when validation is on. */
export async function loadTrainData(config: TrainConfig): Promise<TrainData> {
  const common = {
    dataset: config.dataset, dataRoot: config.dataRoot, imageSize: config.imageSize,
    // The toy set has its own seed: the training seed must not change which classes exist.
    toy: { seed: config.toySeed, imagesPerClass: config.imagesPerClass },
  };
  const train = await loadDataset({ ...common, split: 'train' });
  const val = config.valEvery > 0 ? await loadDataset({ ...common, split: 'val' }) : undefined;
  return { train, val, normalization: datasetNormalization(config.dataset) };
}

export function checkpointPathFor(out: string, generation: number): string {
  return join(out, `gen${generation}.safetensors`);
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Temporary names of checkpoint and log writes (data/atomic-write.ts; the second form is an older one). */
const TEMP_FILE = (name: string): boolean =>
  isAtomicTempName(name, /^(gen\d+\.safetensors|log\.jsonl)$/) || /^(\.gen\d+\.safetensors\.\d+\.\d+|log\.jsonl\.\d+)\.tmp$/.test(name);

/** Removes temporary files that an interrupted checkpoint or log write left in the output folder. */
export function removeTempFiles(out: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(out);
  } catch {
    return;
  }
  for (const name of names) {
    if (!TEMP_FILE(name)) continue;
    try {
      unlinkSync(join(out, name));
    } catch {
      // already gone
    }
  }
}

/** Creates the output folder and removes temporary files a killed run may have left mid-write. */
export async function prepareOutDir(out: string): Promise<void> {
  try {
    await mkdir(out, { recursive: true });
  } catch (err) {
    throw new UserError(`cannot create the output folder ${out}: ${(err as Error).message}`);
  }
  removeTempFiles(out);
}

/** Differences in result-affecting settings between a checkpoint's run and this one, as "key a -> b". */
function configChanges(saved: Record<string, unknown>, now: TrainConfig): string[] {
  const out: string[] = [];
  for (const k of RESULT_AFFECTING_KEYS) {
    const a = JSON.stringify(saved[k]);
    const b = JSON.stringify(now[k]);
    if (a !== b) out.push(`${k} ${a ?? 'unset'} -> ${b ?? 'unset'}`);
  }
  return out;
}

/**
 * The micro-batch size to ask the engine for: the flag's; else that of the run being resumed, so that a
 * resumed run equals an uninterrupted one on any machine; else auto.
 */
export function microBatchFor(config: TrainConfig, checkpoint: Checkpoint | undefined, hooks: TrainHooks): number | 'auto' {
  const saved = checkpoint?.config.microBatch;
  const savedSize = typeof saved === 'number' && Number.isInteger(saved) && saved >= 1 && config.batchSize % saved === 0 ? saved : undefined;
  if (config.microBatch === undefined) return savedSize ?? 'auto';
  if (savedSize !== undefined && savedSize !== config.microBatch) {
    hooks.log?.(`resuming with changed settings (results will differ from an uninterrupted run): microBatch ${savedSize} -> ${config.microBatch}`);
  }
  return config.microBatch;
}

export interface StartingPoint {
  /** The checkpoint being resumed, if any. */
  checkpoint?: Checkpoint;
  state: LoopState;
}

/**
 * Decides where a generation starts. An existing checkpoint is continued only with `resume`; without it the
 * run refuses to overwrite it. A resumed checkpoint must describe the same network.
 */
export async function startingPoint(args: {
  path: string; resume: boolean; generation: number; spec: ModelSpec; config: TrainConfig; hooks: TrainHooks;
}): Promise<StartingPoint> {
  const { path, resume, generation, spec, config, hooks } = args;
  if (!(await fileExists(path))) {
    if (resume) hooks.log?.(`nothing to resume at ${path}; starting gen${generation} from the beginning`);
    await rewriteLogForResume(config.out, generation, []);
    return { state: { epoch: 0, step: 0, rng: new Rng(config.seed), history: [] } };
  }
  if (!resume) throw new UserError(`${path} already exists; pass --resume to continue that run, or choose another --out`);
  const ckpt = await readCheckpoint(path);
  if (ckpt.generation !== generation) throw new UserError(`${path} holds a gen${ckpt.generation} checkpoint, expected gen${generation}`);
  const mismatch = describeSpecMismatch(spec, ckpt.spec);
  if (mismatch) throw new UserError(`cannot resume from ${path}: it holds a different network (${mismatch}); use the settings of that run or another --out`);
  const changes = configChanges(ckpt.config, config);
  if (changes.length) hooks.log?.(`resuming with changed settings (results will differ from an uninterrupted run): ${changes.join(', ')}`);
  hooks.log?.(`resuming gen${generation} from ${path} after epoch ${ckpt.epoch}`);
  await rewriteLogForResume(config.out, generation, ckpt.history);
  return {
    checkpoint: ckpt,
    state: { epoch: ckpt.epoch, step: ckpt.step, rng: Rng.fromState(ckpt.rng), history: [...ckpt.history] },
  };
}

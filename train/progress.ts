/**
 * What a training run shows and records: a progress bar per epoch on a TTY (one line per epoch otherwise),
 * both on stderr, and log.jsonl with one JSON record per epoch.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { ModelView } from './engine.js';
import { writeFailure, writeFileAtomic } from '../data/atomic-write.js';
import { UserError } from '../data/errors.js';
import type { EpochRecord } from './types.js';

export interface StepInfo {
  generation: number;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  lr: number;
  /** Running means over the epoch so far. */
  loss: number;
  parts: Record<string, number>;
  acc: number;
  imagesPerSecond: number;
}

export interface TrainHooks {
  /** Once per generation, after the networks are built and before the first step (models are live until the run ends). */
  onStart?: (info: { generation: number; model: ModelView; teacher?: ModelView }) => void;
  /** After every optimiser step. */
  onStep?: (info: StepInfo) => void;
  /** After every epoch (and its validation and checkpoint). */
  onEpoch?: (record: EpochRecord) => void;
  /** Notes (backend, resume, recipe remarks) as single lines. */
  log?: (line: string) => void;
}

function fmt(v: number, digits = 4): string {
  return Number.isFinite(v) ? v.toFixed(digits) : String(v);
}

function partsText(parts: Record<string, number>): string {
  return Object.entries(parts).map(([k, v]) => `${k} ${fmt(v)}`).join(' ');
}

/** One human-readable line summarising an epoch. */
export function epochLine(r: EpochRecord, epochs: number): string {
  const val = r.val ? ` | val ${r.val.ways}w${r.val.shots}s ${r.val.accuracy.toFixed(2)}%${Number.isFinite(r.val.ci95) ? ` ±${r.val.ci95.toFixed(2)}` : ''}` : '';
  const rot = r.rotAcc !== undefined ? ` rot-acc ${r.rotAcc.toFixed(1)}%` : '';
  return `gen${r.generation} epoch ${r.epoch}/${epochs} lr ${r.lr.toPrecision(3)} | loss ${fmt(r.loss)} (${partsText(r.parts)}) acc ${r.acc.toFixed(1)}%${rot} | ${r.imagesPerSecond.toFixed(1)} img/s ${r.seconds.toFixed(1)} s${val}`;
}

/** One line on the progress of an epoch, for output that is not a terminal. */
export function stepLine(s: StepInfo): string {
  return `gen${s.generation} epoch ${s.epoch}/${s.epochs} step ${s.step}/${s.steps} | loss ${fmt(s.loss)} (${partsText(s.parts)}) acc ${s.acc.toFixed(1)}% | ${s.imagesPerSecond.toFixed(1)} img/s`;
}

/** Without a terminal, a step line at most this often (and at least this often while steps finish). */
export const STEP_LINE_INTERVAL_MS = 10_000;

export interface ConsoleHooksOptions {
  tty?: boolean;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Milliseconds between step lines when not on a terminal (default STEP_LINE_INTERVAL_MS). */
  intervalMs?: number;
  /** The clock, in milliseconds (default performance.now). */
  now?: () => number;
}

/**
 * Hooks for a terminal: a cli-progress bar per epoch when stderr is a TTY; otherwise a line per epoch and, within
 * an epoch, a step line every ~10 s, so that a log file shows the run is alive. Everything goes to stderr so that
 * stdout stays free for machine-readable output.
 */
export function consoleHooks(opts: ConsoleHooksOptions = {}): TrainHooks & { close(): void } {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const intervalMs = opts.intervalMs ?? STEP_LINE_INTERVAL_MS;
  const now = opts.now ?? (() => performance.now());
  let lastLine = now();
  let bar: cliProgress.SingleBar | undefined;
  let epochs = 0;
  const clear = (): void => { bar?.stop(); bar = undefined; };
  const write = (line: string): void => { stream.write(line + '\n'); lastLine = now(); };
  return {
    log: (line) => { clear(); write(line); },
    onStep: (s) => {
      epochs = s.epochs;
      if (!tty) {
        if (s.step < s.steps && now() - lastLine >= intervalMs) write(stepLine(s));
        return;
      }
      const payload = { head: `gen${s.generation} epoch ${s.epoch}/${s.epochs}`, stats: `loss ${fmt(s.loss)} ${partsText(s.parts)} acc ${s.acc.toFixed(1)}% ${s.imagesPerSecond.toFixed(1)} img/s` };
      if (!bar) {
        bar = new cliProgress.SingleBar({ stream, format: '{head} [{bar}] {value}/{total} | {stats}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
        bar.start(s.steps, s.step, payload);
      } else bar.update(s.step, payload);
    },
    onEpoch: (r) => { clear(); write(epochLine(r, epochs || r.epoch)); },
    close: clear,
  };
}

/** The JSON record log.jsonl stores for an epoch (flat, snake_case, easy to load in pandas). */
export function logRecord(r: EpochRecord): Record<string, unknown> {
  return {
    generation: r.generation, epoch: r.epoch, lr: r.lr, steps: r.steps, loss: r.loss, ...r.parts, acc: r.acc,
    ...(r.rotAcc !== undefined ? { rot_acc: r.rotAcc } : {}),
    imgs_per_s: r.imagesPerSecond, seconds: r.seconds,
    ...(r.val ? { val_acc: r.val.accuracy, val_ci95: r.val.ci95, val_episodes: r.val.episodes, val_ways: r.val.ways, val_shots: r.val.shots } : {}),
  };
}

export const LOG_FILE = 'log.jsonl';

export async function appendLog(outDir: string, r: EpochRecord): Promise<void> {
  const path = join(outDir, LOG_FILE);
  try {
    await appendFile(path, JSON.stringify(logRecord(r)) + '\n');
  } catch (err) {
    throw new UserError(`cannot write ${path}: ${writeFailure(err)}`);
  }
}

/**
 * On resume, makes log.jsonl agree with the checkpoint: keeps other generations' lines, replaces this
 * generation's with the checkpoint's history (a run killed between checkpoint and log leaves no gap or extra).
 */
export async function rewriteLogForResume(outDir: string, generation: number, history: EpochRecord[]): Promise<void> {
  const path = join(outDir, LOG_FILE);
  let kept: string[] = [];
  try {
    kept = (await readFile(path, 'utf8')).split('\n').filter((line) => {
      if (!line.trim()) return false;
      try {
        return (JSON.parse(line) as { generation?: number }).generation !== generation;
      } catch {
        return false;
      }
    });
  } catch {
    kept = [];
  }
  const lines = [...kept, ...history.map((r) => JSON.stringify(logRecord(r)))];
  writeFileAtomic(path, lines.map((l) => l + '\n').join(''));
}

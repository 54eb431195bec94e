/**
 * Checkpoints and other atomically written files are flushed to disk (file and folder) before the call returns,
 * and a full disk is one line naming the file. Also: training prints a step line every ~10 s when its output is
 * not a terminal.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { writeFileAtomic } from '../data/atomic-write.js';
import { UserError } from '../data/errors.js';
import { appendLog, consoleHooks, type StepInfo } from '../train/progress.js';
import type { EpochRecord } from '../train/types.js';

function withDir(body: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'skd-durable-'));
  return Promise.resolve(body(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('writeFileAtomic fsyncs the new file and then its folder', () => withDir((dir) => {
  const synced: string[] = [];
  const opened = new Map<number, string>();
  const realOpen = fs.openSync;
  const realFsync = fs.fsyncSync;
  const openSpy = mock.method(fs, 'openSync', (path: fs.PathLike, ...rest: unknown[]) => {
    const fd = (realOpen as (...a: unknown[]) => number)(path, ...rest);
    opened.set(fd, String(path));
    return fd;
  });
  const fsyncSpy = mock.method(fs, 'fsyncSync', (fd: number) => {
    synced.push(opened.get(fd) ?? `fd ${fd}`);
    realFsync(fd);
  });
  syncBuiltinESMExports();
  try {
    writeFileAtomic(join(dir, 'gen0.safetensors'), 'weights');
  } finally {
    openSpy.mock.restore();
    fsyncSpy.mock.restore();
    syncBuiltinESMExports();
  }
  assert.equal(synced.length, 2, `fsync calls: ${synced.join(', ')}`);
  assert.match(synced[0]!, /\.gen0\.safetensors\.[0-9a-f]{12}\.tmp$/, 'the temporary file is flushed before the rename');
  assert.equal(synced[1], dir, 'then the folder, so that the rename is on disk');
  assert.deepEqual(readdirSync(dir), ['gen0.safetensors']);
}));

test('a full disk is one UserError naming the file, and leaves no temporary file', () => withDir((dir) => {
  const enospc = mock.method(fs, 'writeSync', () => {
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  });
  syncBuiltinESMExports();
  try {
    const path = join(dir, 'model.onnx');
    assert.throws(() => writeFileAtomic(path, new Uint8Array(16)), (e: Error) => e instanceof UserError && e.message === `cannot write ${path}: no space left on the device`);
  } finally {
    enospc.mock.restore();
    syncBuiltinESMExports();
  }
  assert.deepEqual(readdirSync(dir), []);
}));

test('log.jsonl on a full disk is a UserError naming it', () => withDir(async (dir) => {
  symlinkSync('/dev/full', join(dir, 'log.jsonl'));
  const record: EpochRecord = { generation: 0, epoch: 1, lr: 0.05, steps: 1, loss: 1, parts: {}, acc: 0, imagesPerSecond: 1, seconds: 1 };
  await assert.rejects(appendLog(dir, record), (e: Error) => e instanceof UserError && e.message === `cannot write ${join(dir, 'log.jsonl')}: no space left on the device`);
}));

test('without a terminal, training prints a step line at least every ~10 s and not more often', () => {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, done) { text += String(chunk); done(); } });
  let clock = 0;
  const hooks = consoleHooks({ tty: false, stream, now: () => clock });
  const steps = 40;
  const step = (i: number): StepInfo => ({ generation: 0, epoch: 1, epochs: 2, step: i, steps, lr: 0.05, loss: 2, parts: { ce: 1.5, ss: 0.25 }, acc: 10, imagesPerSecond: 20 });
  for (let i = 1; i <= steps; i++) {
    clock += 4_000; // a step every 4 s
    hooks.onStep!(step(i));
  }
  const lines = text.trim().split('\n');
  assert.equal(lines.length, 13, text); // every third step (12 s) before the last one
  assert.match(lines[0]!, /^gen0 epoch 1\/2 step 3\/40 \| loss 2\.0000 \(ce 1\.5000 ss 0\.2500\) acc 10\.0% \| 20\.0 img\/s$/);
});

/**
 * Data pipeline speed: loading a CIFAR-FS-sized protocol-2 pickle, the training augmentation, and the toy
 * generator.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, statfsSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { augmentBatch, normalizeBatch } from '../data/augment.js';
import { CIFAR_NORMALIZATION, imageSetFromPickle } from '../data/datasets.js';
import { sampleEpisode } from '../data/episodes.js';
import { Rng } from '../data/rng.js';
import { ImageStore } from '../data/pixels.js';
import { generateToy } from '../data/toy.js';
import { fileBytes, FULL_SIZE, writeFullSize } from './data-files.js';
import { writeDatasetPickle } from '../test/helpers/pickle-writer.js';

export const describe =
  'load_s: read + parse a generated CIFAR-FS-sized protocol-2 pickle (38,400 x 32x32x3, 64 classes); ' +
  'augment: images/s through augmentBatch, batches of 64 at 32x32 (train: crop pad 4 + jitter 0.4 + flip + normalise; ' +
  'support: crop + flip + normalise); toy: images/s generating the toy train split (64 x 600 at 32x32); ' +
  'episodes: 5-way 1-shot 15-query episodes/s from 20 classes x 600. *_per_cpu_s divide by the process CPU time, ' +
  'the steadier figure on a shared machine. augment_chunked_*: the same train augmentation with the pixels in 1 chunk ' +
  'and in 39 chunks of 1000 images, side by side (3 alternating rounds, best CPU time of each). full_size: each published train split at full size (synthetic pixels), ' +
  'written to a temporary folder, then loaded by a fresh process (load_s, peak_rss_gb = its maxRSS) which then ' +
  'augments 40 batches of 64 random images (miniImageNet also with 256 MiB chunks, which forces the windowed pickle parse); a set is skipped when free disk or memory is short. SKD_BENCH_FULL_SIZE=0 skips them all';

/** Writes each full-size split, loads it in a child process, deletes it; skips what the disk or memory cannot hold. */
function fullSize(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const child = join(dirname(fileURLToPath(import.meta.url)), 'data-load.js');
  for (const s of FULL_SIZE) {
    const bytes = fileBytes(s);
    const fs = statfsSync(tmpdir());
    const freeDisk = fs.bavail * fs.bsize;
    if (freeDisk < bytes + 4 * 2 ** 30) { out[s.name] = { skipped: `needs ${(bytes / 1e9).toFixed(1)} GB of disk in ${tmpdir()} (+4 GB spare), ${(freeDisk / 1e9).toFixed(1)} GB free` }; continue; }
    if (freemem() < bytes * 1.2 + 2 * 2 ** 30) { out[s.name] = { skipped: `needs about ${(bytes * 1.2 / 1e9 + 2).toFixed(1)} GB of free memory, ${(freemem() / 1e9).toFixed(1)} GB free` }; continue; }
    const root = mkdtempSync(join(tmpdir(), 'skd-bench-full-'));
    try {
      mkdirSync(join(root, s.name));
      process.stderr.write(`  writing ${s.name} ${s.split} (${s.count} images of ${s.size}x${s.size}x3, ${(bytes / 1e9).toFixed(2)} GB) ...\n`);
      const t0 = Date.now();
      const dir = writeFullSize(s, root);
      const writeSeconds = (Date.now() - t0) / 1000;
      process.stderr.write(`  loading it in a fresh process ...\n`);
      const load = (chunkBytes?: number): Record<string, unknown> =>
        JSON.parse(execFileSync(process.execPath, [child, s.name, dir, s.split, ...(chunkBytes ? [String(chunkBytes)] : [])], { encoding: 'utf8', maxBuffer: 1 << 20 })) as Record<string, unknown>;
      out[s.name] = { file_gb: +(bytes / 1e9).toFixed(2), write_s: writeSeconds, ...load() };
      // The windowed pickle parse (used for pickles over 1 GiB), forced on miniImageNet's 0.8 GB file with 256 MiB chunks.
      if (s.name === 'miniImageNet') out[`${s.name}_windowed_256MiB_chunks`] = load(256 * 2 ** 20);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return out;
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Wall seconds and CPU seconds of fn (CPU time is the steadier figure on a shared machine). */
function timed(fn: () => void): { wall: number; cpu: number } {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  fn();
  const used = process.cpuUsage(cpu);
  return { wall: seconds(start), cpu: (used.user + used.system) / 1e6 };
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'skd-bench-data-'));
  try {
    // A CIFAR-FS-sized split: 64 classes x 600 images, sparse CIFAR-100 ids, pixels from a seeded stream.
    const count = 38_400;
    const pixels = new Uint8Array(count * 3072);
    const rng = new Rng(0);
    for (let i = 0; i < pixels.length; i += 4) {
      const w = rng.nextUint32();
      pixels[i] = w & 255; pixels[i + 1] = (w >>> 8) & 255; pixels[i + 2] = (w >>> 16) & 255; pixels[i + 3] = w >>> 24;
    }
    const labels = Array.from({ length: count }, (_, i) => 1 + (Math.floor(i / 600) * 3) % 100);
    const file = join(dir, 'train.pickle');
    writeDatasetPickle(file, pixels, 32, labels);
    const fileBytes = statSync(file).size;

    const start = process.hrtime.bigint();
    const set = imageSetFromPickle(file, 'CIFAR-FS', 'train');
    const loadSeconds = seconds(start);
    if (set.count !== count || set.classNames.length !== 64) throw new Error('benchmark pickle did not load as written');
    // The pixels are a view into the buffer the file was read into: no copy after reading.
    const pixelsAreView = set.images.chunks.length === 1 && set.images.chunks[0].buffer.byteLength >= fileBytes && set.images.chunks[0].byteOffset > 0;

    const batches = 300;
    const train = { padding: 4, flip: true, jitter: 0.4, normalization: CIFAR_NORMALIZATION };
    const support = { padding: 4, flip: true, jitter: 0, normalization: CIFAR_NORMALIZATION };
    const order = new Rng(1).permutation(count);
    const augRng = new Rng(2);
    const timeAugment = (opts: typeof train): { wall: number; cpu: number } =>
      timed(() => { for (let b = 0; b < batches; b++) augmentBatch(set, order.subarray(b * 64, (b + 1) * 64), augRng, opts); });
    const trainTime = timeAugment(train);
    const supportTime = timeAugment(support);
    // The same augmentation with the pixels split into chunks of 1000 images (as a full-size set is), side by side.
    const chunkedSet = { ...set, images: ImageStore.fromBytes(set.images.all(), 3072, 3072 * 1000) };
    // Alternating rounds, best CPU time of each: the steadier comparison on a shared machine.
    const augmentCpu = (s: typeof set): number => timed(() => { for (let b = 0; b < batches; b++) augmentBatch(s, order.subarray(b * 64, (b + 1) * 64), new Rng(b), train); }).cpu;
    const oneChunk = { cpu: Infinity };
    const manyChunks = { cpu: Infinity };
    for (let round = 0; round < 3; round++) {
      oneChunk.cpu = Math.min(oneChunk.cpu, augmentCpu(set));
      manyChunks.cpu = Math.min(manyChunks.cpu, augmentCpu(chunkedSet));
    }
    const normalizeTime = timed(() => { for (let b = 0; b < batches; b++) normalizeBatch(set, order.subarray(b * 64, (b + 1) * 64), CIFAR_NORMALIZATION); });
    const images = batches * 64;

    let toyCount = 0;
    const toyTime = timed(() => { toyCount = generateToy({ split: 'train', seed: 0 }).count; });

    const testLabels = new Int32Array(12_000).map((_, i) => Math.floor(i / 600));
    const episodeTime = timed(() => { for (let e = 0; e < 600; e++) sampleEpisode(testLabels, 20, e, { nWays: 5, nShots: 1, nQueries: 15, seed: 0 }); });
    const episodeRate = 600 / episodeTime.wall;

    return {
      pickle_mib: +(fileBytes / 2 ** 20).toFixed(1),
      load_s: +loadSeconds.toFixed(3),
      pixels_are_view_of_file_buffer: pixelsAreView,
      augment_train_images_per_s: Math.round(images / trainTime.wall),
      augment_train_images_per_cpu_s: Math.round(images / trainTime.cpu),
      augment_support_images_per_s: Math.round(images / supportTime.wall),
      augment_support_images_per_cpu_s: Math.round(images / supportTime.cpu),
      normalize_images_per_s: Math.round(images / normalizeTime.wall),
      toy_images: toyCount,
      toy_s: +toyTime.wall.toFixed(3),
      toy_images_per_s: Math.round(toyCount / toyTime.wall),
      toy_images_per_cpu_s: Math.round(toyCount / toyTime.cpu),
      episodes_per_s: Math.round(episodeRate),
      augment_chunked_chunks: chunkedSet.images.chunks.length,
      augment_chunked_1_chunk_images_per_cpu_s: Math.round(images / oneChunk.cpu),
      augment_chunked_39_chunks_images_per_cpu_s: Math.round(images / manyChunks.cpu),
      full_size: process.env.SKD_BENCH_FULL_SIZE === '0' ? 'skipped (SKD_BENCH_FULL_SIZE=0)' : fullSize(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

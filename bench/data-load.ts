/**
 * Child process of the data benchmark: loads one dataset split and prints JSON (load seconds, peak RSS, chunks,
 * and augmentation throughput on the loaded storage), so that each figure is the peak of a fresh process.
 * Usage: node dist/bench/data-load.js <dataset> <data-root> <split> [chunk-bytes]
 */
import { augmentBatch } from '../data/augment.js';
import { datasetNormalization, datasetPadding, loadDataset, type DatasetName } from '../data/datasets.js';
import { Rng } from '../data/rng.js';

const [dataset, dataRoot, split, chunk] = process.argv.slice(2) as [DatasetName, string, string, string | undefined];
const rssBefore = process.memoryUsage().rss;
const start = process.hrtime.bigint();
const set = await loadDataset({ dataset, dataRoot, split, chunkBytes: chunk ? Number(chunk) : undefined });
const loadSeconds = Number(process.hrtime.bigint() - start) / 1e9;
const peakAfterLoad = process.resourceUsage().maxRSS * 1024;
// Augmentation on this storage: random images from the whole set (so every chunk is touched), 64 per batch.
const order = new Rng(1).permutation(set.count);
const opts = { padding: datasetPadding(dataset), flip: true, jitter: 0.4, normalization: datasetNormalization(dataset) };
const rng = new Rng(2);
const batches = 40;
const cpu = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let b = 0; b < batches; b++) augmentBatch(set, order.subarray(b * 64, (b + 1) * 64), rng, opts);
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const used = process.cpuUsage(cpu);
process.stdout.write(`${JSON.stringify({
  images: set.count,
  pixel_gb: +(set.images.byteLength / 1e9).toFixed(3),
  chunks: set.images.chunks.length,
  load_s: +loadSeconds.toFixed(2),
  peak_rss_gb: +(peakAfterLoad / 1e9).toFixed(3),
  rss_before_load_gb: +(rssBefore / 1e9).toFixed(3),
  augment_images_per_s: Math.round((batches * 64) / wall),
  augment_images_per_cpu_s: Math.round((batches * 64) / ((used.user + used.system) / 1e6)),
})}\n`);

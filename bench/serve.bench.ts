/**
 * `skd serve` under load on loopback: latency p50/p99 and requests/s for POST /v1/classify (5-way 1-shot,
 * 15 queries per class = 75 queries) and POST /v1/embed (one image), at 1 and 16 concurrent clients, with
 * the full ResNet-12 (64-160-320-640, random weights) at 32x32 exported to ONNX; then the server's RSS
 * before and after 10,000 further embed requests. The server runs as its own process (the CLI, CPU
 * provider, default threads and batching); images travel as base64 PNG.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { CIFAR_NORMALIZATION } from '../data/datasets.js';
import { writeOnnxFile } from '../export/onnx.js';
import { initWeights } from '../models/init.js';
import { resnet12Spec } from '../models/spec.js';
import { runScaleBench } from './serve-scale.js';

export const describe = 'skd serve on loopback: classify (5-way 1-shot, 75 queries) and embed (1 image) latency and requests/s at 1 and 16 clients, full ResNet-12 32x32 (random weights, CPU); server RSS before/after 10,000 embed requests; then a predict burst on one process, on three replicas sharing PostgreSQL, and on two replicas with a remote (KServe v2) backbone';

const SKD_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'skd.js');
const MEMORY_REQUESTS = 10_000;

function noiseImage(seed: number, tint: number): Buffer {
  const px = Buffer.alloc(32 * 32 * 3);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < px.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    px[i] = Math.min(255, ((s >>> 24) & 127) + (i % 3 === tint % 3 ? 120 : 0));
  }
  return px;
}

async function png(seed: number, tint: number): Promise<string> {
  return (await sharp(noiseImage(seed, tint), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer()).toString('base64');
}

async function post(url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** `total` requests from `clients` concurrent loops; each loop waits for its answer before the next. */
async function load(url: string, body: string, clients: number, total: number) {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < total) {
      next++;
      const s = performance.now();
      await post(url, body);
      latencies.push(performance.now() - s);
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    clients, requests: total,
    p50_ms: +percentile(latencies, 50).toFixed(1),
    p99_ms: +percentile(latencies, 99).toFixed(1),
    requests_per_s: +(total / wall).toFixed(1),
  };
}

async function scrape(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rss: value('process_resident_memory_bytes'),
    heap: value('nodejs_heap_used_bytes'),
    runs: value('skd_batch_size_images_count'),
    images: value('skd_batch_size_images_sum'),
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'skd-bench-serve-'));
  const spec = resnet12Spec({ numClasses: 64, imageSize: 32 });
  const model = join(dir, 'resnet12.onnx');
  writeOnnxFile(model, { spec, weights: initWeights(spec, 0), normalization: CIFAR_NORMALIZATION });
  const child = spawn(process.execPath, [SKD_BIN, 'serve', '--model', model, '--port', '0', '--store', join(dir, 'store'), '--device', 'cpu'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    const base = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`skd serve exited: ${stderr}`)));
    });
    const embedBody = JSON.stringify({ images: [await png(1, 0)] });
    const support = await Promise.all([0, 1, 2, 3, 4].map(async (k) => ({ label: `class${k}`, image: await png(100 + k, k) })));
    const queries = await Promise.all(Array.from({ length: 75 }, (_, i) => png(1000 + i, i % 5)));
    const classifyBody = JSON.stringify({ support, queries });

    await load(`${base}/v1/embed`, embedBody, 4, 40); // warm-up
    await load(`${base}/v1/classify`, classifyBody, 1, 2);
    const results: Record<string, unknown> = {};
    const step = async (name: string, path: string, body: string, clients: number, total: number) => {
      const before = await scrape(base);
      process.stderr.write(`  ${name} ...\n`);
      const r = await load(`${base}${path}`, body, clients, total);
      const afterRun = await scrape(base);
      results[name] = { ...r, mean_images_per_onnx_run: +((afterRun.images! - before.images!) / (afterRun.runs! - before.runs!)).toFixed(1) };
    };
    await step('embed_1_client', '/v1/embed', embedBody, 1, 200);
    await step('embed_16_clients', '/v1/embed', embedBody, 16, 800);
    await step('classify_1_client', '/v1/classify', classifyBody, 1, 10);
    await step('classify_16_clients', '/v1/classify', classifyBody, 16, 32);

    process.stderr.write(`  memory: ${MEMORY_REQUESTS} embed requests ...\n`);
    // RSS and V8 heap at 0, 2,500, 5,000, 7,500 and 10,000 requests: a leak shows as steady growth.
    const checkpoints = [await scrape(base)];
    const t0 = performance.now();
    for (let q = 0; q < 4; q++) {
      await load(`${base}/v1/embed`, embedBody, 16, MEMORY_REQUESTS / 4);
      checkpoints.push(await scrape(base));
    }
    const seconds = (performance.now() - t0) / 1000;
    const mib = (v: number) => +(v / 2 ** 20).toFixed(1);
    results.memory = {
      requests: MEMORY_REQUESTS, clients: 16,
      rss_mib_every_2500_requests: checkpoints.map((c) => mib(c.rss!)),
      heap_used_mib_every_2500_requests: checkpoints.map((c) => mib(c.heap!)),
      rss_before_mib: mib(checkpoints[0]!.rss!),
      rss_after_mib: mib(checkpoints[4]!.rss!),
      requests_per_s: +(MEMORY_REQUESTS / seconds).toFixed(1),
    };
    process.stderr.write('  replicas on PostgreSQL, remote backbone ...\n');
    results.past_one_machine = await runScaleBench(model, dir, support, queries);
    results.load_average_after = loadavg().map((v) => +v.toFixed(2));
    results.model = { arch: 'resnet12', widths: spec.widths, image_size: 32, feature_dim: spec.featureDim, weights: 'random (seed 0)' };
    return results;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

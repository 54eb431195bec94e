/**
 * The serving-past-one-machine part of `npm run bench -- serve`: the same bounded burst of predict requests
 * (a stored 5-way classifier, 5 queries each) against
 *   single   one skd serve, folder store, local ONNX Runtime session
 *   replicas three skd serve replicas sharing one PostgreSQL store, each with its own local session, the
 *            requests spread round-robin
 *   remote   two head replicas on the PostgreSQL store with --backbone-url pointing at a third skd serve that
 *            holds the only session (the extra hop of a Triton/KServe deployment)
 * On loopback, one machine, every process on the same cores; figures: requests/s, p50/p99, errors, and whether
 * every answer equals the single process's.
 */
import { join } from 'node:path';
import { startPostgres } from '../test/helpers/postgres.js';
import { spawnServe, type ServeProcess } from '../test/helpers/serve-process.js';

const BURST = 60;
const CLIENTS = 6;

interface BurstResult {
  requests: number;
  clients: number;
  errors: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  answers_identical_to_single: boolean;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

async function burst(bases: string[], bodies: string[], expected: string[] | undefined): Promise<{ result: BurstResult; answers: string[] }> {
  const latencies: number[] = [];
  const answers: string[] = new Array(BURST);
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < BURST) {
      const i = next++;
      const s = performance.now();
      try {
        const res = await fetch(`${bases[i % bases.length]}/v1/classifiers/bench/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[i % bodies.length] });
        const text = await res.text();
        if (res.status !== 200) errors++;
        answers[i] = text;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - s);
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    answers,
    result: {
      requests: BURST, clients: CLIENTS, errors,
      requests_per_s: +(BURST / wall).toFixed(1),
      p50_ms: +percentile(latencies, 50).toFixed(1),
      p99_ms: +percentile(latencies, 99).toFixed(1),
      answers_identical_to_single: expected === undefined ? true : answers.every((a, i) => a === expected[i]),
    },
  };
}

async function put(base: string, support: unknown): Promise<void> {
  const res = await fetch(`${base}/v1/classifiers/bench`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ support }) });
  if (res.status !== 201 && res.status !== 200) throw new Error(`PUT on ${base}: HTTP ${res.status} ${await res.text()}`);
}

/** `model`: an ONNX file from skd export; `dir`: a scratch folder; support and query images as request values. */
export async function runScaleBench(model: string, dir: string, support: { label: string; image: string }[], queries: string[]): Promise<Record<string, unknown>> {
  const common = ['--model', model, '--device', 'cpu', '--threads', '1'];
  const bodies = Array.from({ length: 12 }, (_, i) => JSON.stringify({ queries: queries.slice((i * 5) % queries.length, ((i * 5) % queries.length) + 5) }));
  const started: ServeProcess[] = [];
  const serve = async (args: string[]) => {
    const p = await spawnServe([...common, ...args], 60_000);
    started.push(p);
    return p;
  };
  const pg = await startPostgres();
  try {
    const single = await serve(['--store', join(dir, 'single-store')]);
    await put(single.url, support);
    await burst([single.url], bodies, undefined); // warm-up
    const reference = await burst([single.url], bodies, undefined);
    await single.stop();

    const replicas = await Promise.all([0, 1, 2].map(() => serve(['--store', pg.url])));
    await put(replicas[0]!.url, support);
    await burst(replicas.map((r) => r.url), bodies, undefined);
    const shared = await burst(replicas.map((r) => r.url), bodies, reference.answers);
    await Promise.all(replicas.map((r) => r.stop()));

    const backbone = await serve(['--store', join(dir, 'backbone-store'), '--model-name', 'backbone']);
    const heads = await Promise.all([0, 1].map(() => serve(['--store', pg.url, '--backbone-url', `${backbone.url}/v2/models/backbone`])));
    await burst(heads.map((r) => r.url), bodies, undefined);
    const remote = await burst(heads.map((r) => r.url), bodies, reference.answers);
    return {
      burst: `${BURST} POST /v1/classifiers/bench/predict (5 queries each), ${CLIENTS} concurrent clients, after one warm-up burst`,
      single_process_folder_store: reference.result,
      three_replicas_postgres_store: shared.result,
      two_replicas_postgres_remote_backbone: remote.result,
    };
  } finally {
    for (const p of started) await p.stop().catch(() => undefined);
    await pg.destroy();
  }
}

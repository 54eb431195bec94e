/**
 * `npm run bench [-- name...]`: runs every bench/<name>.bench.ts (or the named ones) and prints one JSON
 * document with the machine, the settings and each benchmark's figures. Progress goes to stderr.
 */
import { readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BenchModule {
  /** What the figures measure and under which settings. */
  describe: string;
  run: () => Promise<Record<string, unknown>>;
}

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.bench\.js$/, '')))
  .sort();

const results: Record<string, unknown> = {};
for (const f of files) {
  const name = f.replace(/\.bench\.js$/, '');
  process.stderr.write(`bench ${name} ...\n`);
  const mod = (await import(pathToFileURL(join(here, f)).href)) as BenchModule;
  const started = Date.now();
  results[name] = { describe: mod.describe, ...(await mod.run()), wall_s: (Date.now() - started) / 1000 };
}
const cpuList = cpus();
console.log(JSON.stringify({
  machine: { cpu: cpuList[0]?.model ?? 'unknown', cores: cpuList.length, memory_gib: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, platform: `${process.platform}-${process.arch}` },
  date: new Date().toISOString(),
  results,
}, null, 2));

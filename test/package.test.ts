/**
 * The package as a user installs it: an executable launcher, an `engines` range that every dependency admits,
 * declared install scripts, a library entry point importable by name, and an `npm pack` that ships what runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import semver from 'semver';
import { REPO_ROOT, SKD_BIN } from './helpers/run-skd.js';

const run = promisify(execFile);

interface PackageJson {
  engines: { node: string };
  allowScripts?: Record<string, boolean>;
  exports?: unknown;
  main?: string;
  types?: string;
}
interface LockEntry { version?: string; engines?: { node?: string } | string[]; hasInstallScript?: boolean; dev?: boolean; optional?: boolean }

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

test('the build leaves the launcher executable, and it runs as ./dist/bin/skd.js', async () => {
  assert.equal(statSync(SKD_BIN).mode & 0o111, 0o111, `${SKD_BIN} is not executable`);
  const { stdout } = await run(SKD_BIN, ['--version']);
  assert.match(stdout.trim(), /^\d+\.\d+\.\d+/);
});

test('engines.node is a range that every installed dependency admits, and it admits Node 20.20', () => {
  const ours = pkg.engines.node;
  assert.ok(semver.satisfies('20.20.2', ours), `${ours} does not admit 20.20.2`);
  assert.ok(semver.satisfies(process.version, ours), `${ours} does not admit this Node.js, ${process.version}`);
  const tooNarrow: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    const range = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
    // Platform packages for other systems (sharp's win32-ia32 build, ...) are never installed here.
    if (!path || !range || (entry.optional && !existsSync(join(REPO_ROOT, path)))) continue;
    if (!semver.subset(ours, range)) tooNarrow.push(`${path.replace(/^.*node_modules\//, '')}@${entry.version} wants node ${range}`);
  }
  assert.deepEqual(tooNarrow, [], `dependencies that warn EBADENGINE on part of ${ours}`);
});

test('every dependency with an install script is approved or denied in allowScripts', () => {
  const declared = pkg.allowScripts ?? {};
  // Keys are "name" or "name@range" ("@scope/name@range" for scoped packages).
  const names = Object.keys(declared).map((k) => (k.startsWith('@') ? `@${k.slice(1).split('@')[0]}` : k.split('@')[0]));
  const missing = Object.entries(lock.packages)
    .filter(([path, e]) => path && e.hasInstallScript)
    .map(([path]) => path.replace(/^.*node_modules\//, ''))
    .filter((name) => !names.includes(name));
  assert.deepEqual(missing, [], 'install scripts npm would warn about');
});

test('the package imports by name and offers the documented API', async () => {
  const name = 'skd';
  const api = (await import(name)) as typeof import('../index.js');
  for (const fn of ['openModel', 'extractFeatures', 'createHead', 'headFromJSON', 'evaluate', 'evaluateFewShot', 'loadDataset', 'train'] as const) {
    assert.equal(typeof api[fn], 'function', `${fn} is exported`);
  }
  assert.equal(api.FEW_SHOT_PROTOCOL.nTestRuns, 600);
  assert.ok(pkg.types && statSync(join(REPO_ROOT, pkg.types)).isFile(), 'the type declarations named by "types" exist');
});

test('npm pack ships the built code, the page and the ONNX schema, but not the tests or benchmarks', async () => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
  const files = new Set((JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  for (const needed of ['package.json', 'README.md', 'dist/bin/skd.js', 'dist/index.js', 'dist/index.d.ts', 'dist/infer/session.js', 'web/dist/index.html', 'web/dist/app.js', 'proto/onnx.proto']) {
    assert.ok(files.has(needed), `${needed} is in the package`);
  }
  const unwanted = [...files].filter((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.startsWith('test/') || f.endsWith('.ts') && !f.endsWith('.d.ts'));
  assert.deepEqual(unwanted, []);
});

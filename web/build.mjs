#!/usr/bin/env node
/**
 * Builds the browser demo into web/dist: type-checks web/src (web/tsconfig.json, with tsc -b: it references the
 * browser-safe modules it shares with Node, tsconfig.browser.json), bundles it with
 * esbuild, copies the static files, and copies onnxruntime-web's WebAssembly runtime next to it so
 * the page loads nothing from another origin.
 *
 *   node web/build.mjs            type-check, then build
 *   node web/build.mjs --no-check skip the type-check (faster while editing)
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const WEB = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(WEB);
const DIST = join(WEB, 'dist');
const require = createRequire(import.meta.url);

/**
 * The runtime files onnxruntime-web loads at run time from `ort.env.wasm.wasmPaths`: the WebGPU build
 * (JSEP) and the plain WebAssembly build (SIMD, threads); the page picks one (see web/src/backbone.ts).
 */
const ORT_RUNTIME_FILES = [
  'ort-wasm-simd-threaded.jsep.mjs',
  'ort-wasm-simd-threaded.jsep.wasm',
  'ort-wasm-simd-threaded.mjs',
  'ort-wasm-simd-threaded.wasm',
];
const STATIC_FILES = ['index.html', 'styles.css'];

function typeCheck() {
  const tsc = require.resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-b', join(WEB, 'tsconfig.json')], { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error('web: type errors in web/src (see above)');
    process.exit(1);
  }
}

function ortDistDir() {
  // The package's exports map hides package.json; resolve its Node entry and step up to dist/.
  return dirname(require.resolve('onnxruntime-web'));
}

async function build() {
  const started = Date.now();
  if (!process.argv.includes('--no-check')) typeCheck();

  // Build into a fresh temporary folder, then swap it in, so a failed build never leaves a half-written dist.
  const staging = join(WEB, `.dist-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'ort'), { recursive: true });
  try {
    await esbuild.build({
      entryPoints: { app: join(WEB, 'src', 'main.ts') },
      outdir: staging,
      // The two onnxruntime-web builds become chunks loaded on demand.
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['es2022'],
      minify: true,
      sourcemap: true,
      // Use onnxruntime-web's build that loads its .wasm/.mjs from wasmPaths instead of embedding URLs.
      conditions: ['onnxruntime-web-use-extern-wasm'],
      logLevel: 'warning',
      legalComments: 'linked',
    });
    for (const file of STATIC_FILES) copyFileSync(join(WEB, file), join(staging, file));
    const ortDist = ortDistDir();
    for (const file of ORT_RUNTIME_FILES) {
      const source = join(ortDist, file);
      if (!existsSync(source)) throw new Error(`onnxruntime-web runtime file missing: ${source}`);
      copyFileSync(source, join(staging, 'ort', file));
    }
    rmSync(DIST, { recursive: true, force: true });
    renameSync(staging, DIST);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  const size = (file) => `${(statSync(join(DIST, file)).size / 1e6).toFixed(2)} MB`;
  console.error(
    `web: built ${DIST.slice(ROOT.length + 1)} in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(app.js ${size('app.js')}, runtime ${ORT_RUNTIME_FILES.map((f) => size(join('ort', f))).join(' + ')})`,
  );
}

build().catch((err) => {
  console.error(`web: build failed: ${err.message}`);
  process.exit(1);
});

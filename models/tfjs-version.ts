/**
 * The TensorFlow.js engine reaches into package internals that are not public API: the threaded wasm binary's
 * Emscripten glue and worker (tfjs-wasm-threads.ts) and tfjs-core's ESM gradient registrations
 * (tfjs-gradients.ts). They were written against one release; another one is refused with a clear message
 * rather than failing somewhere inside.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { UserError } from '../data/errors.js';

/** The release of @tensorflow/tfjs-core and @tensorflow/tfjs-backend-wasm that the patched internals fit. */
export const SUPPORTED_TFJS_VERSION = '4.22.0';

export function installedVersion(pkg: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** Throws a UserError when `pkg` is not the supported release (`what`: which internals need it). */
export function checkTfjsVersion(pkg: '@tensorflow/tfjs-core' | '@tensorflow/tfjs-backend-wasm', what: string, found = installedVersion(pkg)): void {
  if (found === SUPPORTED_TFJS_VERSION) return;
  throw new UserError(
    `${pkg} ${found ?? '(not found)'} is installed, but skd's TensorFlow.js engine was written for ${SUPPORTED_TFJS_VERSION} (${what}); ` +
    `install it with \`npm install ${pkg}@${SUPPORTED_TFJS_VERSION}\`, or train with --engine ort`,
  );
}

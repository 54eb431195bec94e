import { existsSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';
import { buildApp } from '../../infer/server/app.js';

/** The package's root: the nearest folder above this file with a package.json (the compiled file sits in dist/bin/commands). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('skd web: cannot find the package root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

/** web/dist of this package, where `node web/build.mjs` puts the page. */
export const WEB_DIST = join(packageRoot(), 'web', 'dist');
/** Models `skd web` serves when --model is not given, first match wins (the toy demo's outputs). */
export const DEFAULT_MODEL_CANDIDATES = ['skd-demo/gen1.onnx', 'skd-demo/gen0.onnx'];

export interface WebServerOptions {
  /** The ONNX file served at /model.onnx; none means the page asks the user to pick one. */
  modelPath?: string | null;
  /** Port to listen on; 0 picks a free one. Default 8080. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1 (this machine only). */
  host?: string;
  /** The built page. Default web/dist of this package. */
  distDir?: string;
}

export interface WebServer {
  /** The page's address, e.g. http://127.0.0.1:8080/ */
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** The model to serve: --model when given (it must exist), else the demo's output when present, else null. */
export function resolveModelPath(model: string | undefined, cwd = process.cwd()): string | null {
  if (model !== undefined) {
    const path = resolve(cwd, model);
    if (!existsSync(path) || !statSync(path).isFile()) throw new UserError(`--model ${model}: no such file (expected an exported .onnx model)`);
    return path;
  }
  for (const candidate of DEFAULT_MODEL_CANDIDATES) {
    const path = resolve(cwd, candidate);
    if (existsSync(path)) return path;
  }
  return null;
}

/** Serves the built page, its runtime files and the model with `skd serve`'s app (without the API); resolves once listening. */
export async function startWebServer(opts: WebServerOptions = {}): Promise<WebServer> {
  const distDir = resolve(opts.distDir ?? WEB_DIST);
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new UserError(`the page is not built (no ${join(distDir, 'index.html')}); run \`node web/build.mjs\` (npm ci and npm test do it)`);
  }
  const app = await buildApp(null, { webDir: distDir, modelPath: opts.modelPath ?? null });
  const host = opts.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: opts.port ?? 8080 });
  } catch (err) {
    await app.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserError(`--port ${opts.port}: already in use; pick another port (or 0 for any free one)`);
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  // The page holds keep-alive connections open (and nothing it asks for needs finishing): close them all at once.
  const close = async (): Promise<void> => {
    const closing = app.close();
    app.server.closeAllConnections();
    await closing;
  };
  return { url: `http://${shownHost}:${port}/`, server: app.server, close };
}

interface WebArgs {
  model?: string;
  port: number;
  host: string;
}

export const webCommand: CommandModule<object, WebArgs> = {
  command: 'web',
  describe: 'Serve the browser demo alone: the page classifies pictures with the model in the visitor\'s browser',
  builder: (y) =>
    y
      .option('model', { type: 'string', describe: 'Exported .onnx backbone to offer the page (default: skd-demo/gen1.onnx, then gen0.onnx, when present)' })
      .option('port', { type: 'number', default: 8080, describe: 'Port to listen on (0: any free port)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Interface to listen on (0.0.0.0 to reach it from another device; the camera then needs https)' })
      .example('$0 web --model skd-demo/gen1.onnx', 'serve the page at http://127.0.0.1:8080/'),
  handler: async (args) => {
    if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new UserError(`--port ${args.port}: expected a whole number from 0 to 65535`);
    const modelPath = resolveModelPath(args.model);
    const web = await startWebServer({ modelPath, port: args.port, host: args.host });
    if (modelPath) console.error(`skd web: serving ${modelPath} as /model.onnx`);
    else console.error('skd web: no model given and no skd-demo/gen1.onnx or gen0.onnx here; the page will ask for a model file (pass --model model.onnx, or run `skd demo` first)');
    console.log(web.url);
    const stop = () => void web.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  },
};

import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandModule } from 'yargs';
import { UserError } from '../../data/errors.js';

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

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/**
 * Headers that make the page cross-origin isolated (so onnxruntime-web can use threads through
 * SharedArrayBuffer) and keep every resource same-origin.
 */
export const ISOLATION_HEADERS: Record<string, string> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

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

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { ...ISOLATION_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`${text}\n`);
}

function sendFile(req: IncomingMessage, res: ServerResponse, path: string): void {
  const stats = statSync(path);
  // A validator lets the browser keep the 14-28 MB runtime (and its compiled code) between visits.
  const etag = `"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
  const headers = {
    ...ISOLATION_HEADERS,
    'Content-Type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    // Revalidate every time: a rebuilt page or another --model must not be served stale.
    'Cache-Control': 'no-cache',
    ETag: etag,
  };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': String(stats.size) });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const stream = createReadStream(path);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/** Maps a request path to a file under distDir, or null when it would leave it or does not exist. */
function fileUnder(distDir: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const relative = decoded === '/' ? 'index.html' : decoded.replace(/^\/+/, '');
  const path = normalize(join(distDir, relative));
  if (path !== distDir && !path.startsWith(distDir + sep)) return null;
  return existsSync(path) && statSync(path).isFile() ? path : null;
}

/** Serves the built page, its runtime files and the model; resolves once listening. */
export async function startWebServer(opts: WebServerOptions = {}): Promise<WebServer> {
  const distDir = resolve(opts.distDir ?? WEB_DIST);
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new UserError(`the page is not built (no ${join(distDir, 'index.html')}); run \`node web/build.mjs\` (npm ci and npm test do it)`);
  }
  const modelPath = opts.modelPath ?? null;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendText(res, 405, 'only GET and HEAD are served');
      return;
    }
    const urlPath = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (urlPath === '/model.onnx') {
      if (modelPath && existsSync(modelPath)) sendFile(req, res, modelPath);
      else sendText(res, 404, 'no model is served; start `skd web --model model.onnx` or pick a file in the page');
      return;
    }
    const file = fileUnder(distDir, urlPath);
    if (file) sendFile(req, res, file);
    else sendText(res, 404, `not found: ${urlPath}`);
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new UserError(`--port ${opts.port}: already in use; pick another port (or 0 for any free one)`) : err),
    );
    server.listen(opts.port ?? 8080, host, () => resolveListen());
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    server,
    close: () => new Promise<void>((resolveClose) => {
      server.closeAllConnections();
      server.close(() => resolveClose());
    }),
  };
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

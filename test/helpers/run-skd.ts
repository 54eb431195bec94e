import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Path of the compiled `skd` entry point (tests run from dist/test). */
export const SKD_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'skd.js');
/** The repository root (dist/test/helpers -> ../../..). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** test/fixtures in the source tree. */
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');

export interface SkdResult { code: number | null; stdout: string; stderr: string }

/** Runs the compiled CLI as a user would, capturing its output. */
export function runSkd(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<SkdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SKD_BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

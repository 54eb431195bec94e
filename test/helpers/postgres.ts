/**
 * A throw-away PostgreSQL cluster for tests and benchmarks: initdb in a temporary folder, then postgres on a
 * free loopback port (no Unix socket), stopped and removed by the caller. PostgreSQL refuses to run as root,
 * so as root (CI containers) the cluster's files and processes belong to the `postgres` user (or `nobody`).
 * Debian's postgresql package puts the programs in /usr/lib/postgresql/<version>/bin, which is searched too.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';

export interface PostgresCluster {
  /** Connection URL for the `postgres` database as the superuser `skd`. */
  url: string;
  port: number;
  /** Stops the server the way a crash would (SIGKILL to the postmaster); `start` then runs crash recovery. */
  crash(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its files. */
  destroy(): Promise<void>;
}

function binDir(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, 'initdb'))) return dir;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error('PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); .ci/run installs Debian\'s postgresql');
  return join(root, versions[0]!, 'bin');
}

/** uid/gid of an unprivileged user to run the cluster as, when we are root. */
function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  const entry = passwd.find((f) => f[0] === 'postgres') ?? passwd.find((f) => f[0] === 'nobody');
  if (!entry) throw new Error('running as root and there is neither a postgres nor a nobody user to run PostgreSQL as');
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function run(bin: string, args: string[], cwd: string, user: { uid: number; gid: number } | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { cwd, uid: user?.uid, gid: user?.gid, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = binDir();
  const user = unprivilegedUser();
  const dir = mkdtempSync(join(tmpdir(), 'skd-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'skd', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'], dir, user);
  const port = await freePort();
  const options = `-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories='' -c fsync=on -c synchronous_commit=on`;
  const start = async (): Promise<void> => {
    await run(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', options, 'start'], dir, user);
  };
  await start();
  const postmasterPid = (): number | undefined => {
    const file = join(data, 'postmaster.pid');
    return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : undefined;
  };
  const killAndWait = async (): Promise<void> => {
    const pid = postmasterPid();
    if (!pid) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    // The postmaster is gone at once; its backends notice and exit within moments. Wait for the port to free.
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 200));
  };
  return {
    url: `postgres://skd@127.0.0.1:${port}/postgres`,
    port,
    crash: killAndWait,
    start,
    destroy: async () => {
      await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], dir, user).catch(() => killAndWait());
      rmSync(dir, { recursive: true, force: true });
    },
  };
}


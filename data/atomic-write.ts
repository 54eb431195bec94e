/**
 * Atomic, durable file writes: readers see the old file or the whole new one, never a partial file, and once the
 * call returns the new file survives a power cut (the data and the rename are flushed to disk).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from './errors.js';

/** The reason a write failed, in words, for a one-line message that names the file. */
export function writeFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT': return 'its folder does not exist';
    case 'EACCES': case 'EPERM': case 'EROFS': return 'permission denied';
    case 'EISDIR': return 'it is a directory';
    case 'ENOSPC': return 'no space left on the device';
    case 'EDQUOT': return 'disk quota exceeded';
    default: return e.message;
  }
}

/** Flushes a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened for that (Windows). */
function fsyncFolder(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR') throw err;
  } finally {
    closeSync(fd);
  }
}

/** The temporary name writeFileAtomic uses for `path`: `.<name>.<12 hex digits>.tmp` beside it. */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Whether `name` is a temporary file that writeFileAtomic left (interrupted) for a file whose name matches `target`. */
export function isAtomicTempName(name: string, target: RegExp): boolean {
  const m = /^\.(.+)\.[0-9a-f]{12}\.tmp$/.exec(name);
  return m !== null && target.test(m[1]!);
}

/**
 * Writes to a temporary name in the target folder, flushes it, renames it over `path` and flushes the folder;
 * on failure removes the temporary file and throws a UserError naming `path`.
 */
export function writeFileAtomic(path: string, contents: Uint8Array | string): void {
  const temp = tempPathFor(path);
  try {
    const fd = openSync(temp, 'w');
    try {
      const bytes = typeof contents === 'string' ? Buffer.from(contents, 'utf8') : contents;
      for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    fsyncFolder(dirname(path));
  } catch (err) {
    rmSync(temp, { force: true });
    throw new UserError(`cannot write ${path}: ${writeFailure(err)}`);
  }
}

/** Atomic file writes: readers see the old file or the whole new one, never a partial file. */
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from './errors.js';

/** Writes to a temporary name in the target folder, then renames; on failure removes the temporary file. */
export function writeFileAtomic(path: string, contents: Uint8Array | string): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, contents);
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'its folder does not exist'
      : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? 'permission denied'
      : e.code === 'EISDIR' ? 'it is a directory'
      : e.message;
    throw new UserError(`cannot write ${path}: ${why}`);
  }
}

/**
 * An error caused by what the user gave us (a path, a flag, a file's contents). The command line prints
 * its message alone, with no stack trace, and exits non-zero.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

const FS_REASONS: Record<string, string> = {
  ELOOP: 'a loop of symbolic links',
  ENOENT: 'not found',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'not a directory',
  EISDIR: 'a directory',
  EMFILE: 'too many open files',
};

/** A file-system error's cause in words, for one-line messages ("a loop of symbolic links (ELOOP)"). */
export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (!code) return (err as Error)?.message ?? String(err);
  return FS_REASONS[code] ? `${FS_REASONS[code]} (${code})` : code;
}

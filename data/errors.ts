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

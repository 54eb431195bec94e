/**
 * Saved classifiers. `ClassifierStore` is what the routes use; two implementations keep the same
 * semantics: `FolderStore` (below: one JSON file per name, the embedded default that needs no server) and
 * `PostgresStore` (store-postgres.ts: one table shared by several replicas).
 *
 * Semantics both keep: a write is atomic (a reader sees the old record or the new one, never a mix); a write
 * is acknowledged only once it is durable; writes and deletes of one name apply in the order they were asked
 * for, and whether a PUT created the name is decided inside that serialised write; every record has an entity
 * tag, and a write with a condition (If-Match / If-None-Match) applies only when the condition holds at the
 * moment of the write, else it fails with PreconditionFailedError.
 *
 * The folder store: every write goes to a temporary file in the same directory, is flushed to disk (fsync),
 * renamed over the final name, and the directory is flushed too, so a crash at any moment leaves either the old
 * file or the new one, and an acknowledged write survives a power cut. Leftover temporary files of its own
 * naming (from a crash) are removed on open; other files are left alone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import {
  CLASSIFIER_NAME_PATTERN, RECORD_FORMAT, RECORD_VERSION, isValidClassifierName, summarize, validateRecord, type ClassifierRecord,
  type ClassifierSummary,
} from '../classifier-record.js';

export { CLASSIFIER_NAME_PATTERN, isValidClassifierName, summarize, type ClassifierSummary } from '../classifier-record.js';
export const STORE_FORMAT = RECORD_FORMAT;
export const STORE_VERSION = RECORD_VERSION;
/** A stored classifier is a classifier record (infer/classifier-record.ts), validated on load and on put. */
export type StoredClassifier = ClassifierRecord;
const FILE_SUFFIX = '.json';
/** The temporary names writeFileAtomic creates: ".<file>.<pid>.<hex>.tmp". Only these are cleaned up. */
const OWN_TEMP_FILE = /^\.[A-Za-z0-9_-]{1,64}\.json\.\d+\.[0-9a-f]+\.tmp$/;

/** A record with its entity tag (a quoted string, as sent in the ETag header). */
export interface StoredEntry {
  classifier: StoredClassifier;
  etag: string;
}

/**
 * A precondition on a write: `ifMatch` holds when the current record's tag is one of the list ('*': any record
 * exists); `ifNoneMatch: '*'` holds when there is no record of that name.
 */
export interface WriteCondition {
  ifMatch?: '*' | string[];
  ifNoneMatch?: '*';
}

export class PreconditionFailedError extends Error {
  constructor(readonly header: 'if-match' | 'if-none-match', message: string) {
    super(message);
    this.name = 'PreconditionFailedError';
  }
}

/** The store cannot be reached (a database down or refusing connections); the request may be retried. */
export class StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export interface ClassifierStore {
  /** Where the classifiers live, for log lines (a folder, or a database URL without its password). */
  readonly location: string;
  /** Records found unreadable when the store was opened (each skipped with its reason). */
  readonly skipped: { file: string; reason: string }[];
  /** How many classifiers the store held when this process last looked (for /healthz and /metrics). */
  readonly size: number;
  get(name: string): Promise<StoredEntry | undefined>;
  list(): Promise<ClassifierSummary[]>;
  /** Validates the record (throws RecordError), writes durably; resolves once acknowledged, saying whether the name was new. */
  put(classifier: StoredClassifier, condition?: WriteCondition): Promise<{ created: boolean; etag: string }>;
  /** Removes a classifier; resolves to false when there was none of that name (and no condition was given). */
  delete(name: string, condition?: WriteCondition): Promise<boolean>;
  close(): Promise<void>;
}

export function checkClassifierName(name: string): void {
  if (!isValidClassifierName(name)) throw new RangeError(`classifier name ${JSON.stringify(name)} must match ${CLASSIFIER_NAME_PATTERN}`);
}

/** Checks a condition against the current tag (undefined: no record); throws PreconditionFailedError. */
export function checkCondition(name: string, current: string | undefined, condition: WriteCondition | undefined): void {
  if (!condition) return;
  const { ifMatch, ifNoneMatch } = condition;
  if (ifMatch !== undefined) {
    const holds = current !== undefined && (ifMatch === '*' || ifMatch.includes(current));
    if (!holds) {
      throw new PreconditionFailedError('if-match', current === undefined
        ? `there is no classifier named ${JSON.stringify(name)}`
        : `classifier ${JSON.stringify(name)} has changed: its ETag is now ${current}`);
    }
  }
  if (ifNoneMatch === '*' && current !== undefined) {
    throw new PreconditionFailedError('if-none-match', `classifier ${JSON.stringify(name)} already exists (ETag ${current})`);
  }
}

/** Per-name chains, so writes and deletes of one name apply in the order they were asked for. */
export class NameQueue {
  private readonly chains = new Map<string, Promise<unknown>>();

  run<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.chains.set(name, next);
    const cleanup = (): void => {
      if (this.chains.get(name) === next) this.chains.delete(name);
    };
    next.then(cleanup, cleanup);
    return next;
  }
}

/** The folder store's entity tag: a digest of the file's bytes, so it survives restarts. */
function contentTag(json: string): string {
  return `"${createHash('sha256').update(json).digest('hex').slice(0, 32)}"`;
}

/** Reads one classifier file; throws with the reason when it is not a valid record of this store. */
export function parseClassifierFile(text: string, name: string): StoredClassifier {
  if (!isValidClassifierName(name)) throw new Error(`the name does not match ${CLASSIFIER_NAME_PATTERN}`);
  return validateRecord(JSON.parse(text), { name });
}

export class FolderStore implements ClassifierStore {
  private readonly items = new Map<string, StoredEntry>();
  private readonly queue = new NameQueue();

  private constructor(readonly dir: string, readonly skipped: { file: string; reason: string }[]) {}

  /** Opens (creating if needed) a store directory and loads every classifier in it. */
  static async open(dir: string): Promise<FolderStore> {
    await mkdir(dir, { recursive: true });
    const store = new FolderStore(dir, []);
    for (const file of (await readdir(dir)).sort()) {
      if (OWN_TEMP_FILE.test(file)) {
        await unlink(join(dir, file)).catch(() => undefined);
        continue;
      }
      if (!file.endsWith(FILE_SUFFIX)) continue;
      const name = file.slice(0, -FILE_SUFFIX.length);
      try {
        const text = await readFile(join(dir, file), 'utf8');
        store.items.set(name, { classifier: parseClassifierFile(text, name), etag: contentTag(text) });
      } catch (err) {
        store.skipped.push({ file, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    return store;
  }

  get location(): string {
    return this.dir;
  }

  get size(): number {
    return this.items.size;
  }

  async list(): Promise<ClassifierSummary[]> {
    return [...this.items.values()].map((e) => summarize(e.classifier)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<StoredEntry | undefined> {
    return this.items.get(name);
  }

  put(classifier: StoredClassifier, condition?: WriteCondition): Promise<{ created: boolean; etag: string }> {
    const name = classifier.name;
    checkClassifierName(name);
    validateRecord(classifier);
    return this.queue.run(name, async () => {
      const current = this.items.get(name)?.etag;
      checkCondition(name, current, condition);
      const json = JSON.stringify(classifier);
      await writeFileAtomic(this.dir, `${name}${FILE_SUFFIX}`, json);
      const etag = contentTag(json);
      this.items.set(name, { classifier, etag });
      return { created: current === undefined, etag };
    });
  }

  delete(name: string, condition?: WriteCondition): Promise<boolean> {
    checkClassifierName(name);
    return this.queue.run(name, async () => {
      const current = this.items.get(name)?.etag;
      checkCondition(name, current, condition);
      if (current === undefined) return false;
      await unlink(join(this.dir, `${name}${FILE_SUFFIX}`)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await fsyncDir(this.dir);
      this.items.delete(name);
      return true;
    });
  }

  async close(): Promise<void> {
    // Nothing is held open between writes.
  }
}

/** temp file in the same directory -> write -> fsync -> rename -> fsync directory. */
export async function writeFileAtomic(dir: string, file: string, contents: string): Promise<void> {
  const temp = join(dir, `.${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(contents, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, join(dir, file));
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

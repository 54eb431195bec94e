/**
 * Saved classifiers: one JSON file per name in a directory. Every write goes to a temporary file in the
 * same directory, is flushed to disk (fsync), renamed over the final name, and the directory is flushed
 * too, so a crash at any moment leaves either the old file or the new one, never a torn one, and an
 * acknowledged write survives a power cut. Leftover temporary files from a crash are removed on open.
 */
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
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
const TEMP_SUFFIX = '.tmp';

export class ClassifierStore {
  private readonly items = new Map<string, StoredClassifier>();
  /** Per-name chains, so writes and deletes of one name apply in the order they were asked for. */
  private readonly chains = new Map<string, Promise<unknown>>();

  private constructor(readonly dir: string, readonly skipped: { file: string; reason: string }[]) {}

  /** Opens (creating if needed) a store directory and loads every classifier in it. */
  static async open(dir: string): Promise<ClassifierStore> {
    await mkdir(dir, { recursive: true });
    const store = new ClassifierStore(dir, []);
    for (const file of (await readdir(dir)).sort()) {
      if (file.endsWith(TEMP_SUFFIX)) {
        await unlink(join(dir, file)).catch(() => undefined);
        continue;
      }
      if (!file.endsWith(FILE_SUFFIX)) continue;
      const name = file.slice(0, -FILE_SUFFIX.length);
      try {
        if (!isValidClassifierName(name)) throw new Error(`the name does not match ${CLASSIFIER_NAME_PATTERN}`);
        store.items.set(name, validateRecord(JSON.parse(await readFile(join(dir, file), 'utf8')), { name }));
      } catch (err) {
        store.skipped.push({ file, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    return store;
  }

  get size(): number {
    return this.items.size;
  }

  list(): ClassifierSummary[] {
    return [...this.items.values()].map(summarize).sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): StoredClassifier | undefined {
    return this.items.get(name);
  }

  /** Validates a classifier record (throws RecordError) and writes it durably; resolves once it is on disk. */
  put(classifier: StoredClassifier): Promise<void> {
    const name = classifier.name;
    this.checkName(name);
    validateRecord(classifier);
    return this.serialize(name, async () => {
      await writeFileAtomic(this.dir, `${name}${FILE_SUFFIX}`, JSON.stringify(classifier));
      this.items.set(name, classifier);
    });
  }

  /** Removes a classifier; resolves to false when there was none of that name. */
  delete(name: string): Promise<boolean> {
    this.checkName(name);
    return this.serialize(name, async () => {
      if (!this.items.has(name)) return false;
      await unlink(join(this.dir, `${name}${FILE_SUFFIX}`)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await fsyncDir(this.dir);
      this.items.delete(name);
      return true;
    });
  }

  private checkName(name: string): void {
    if (!isValidClassifierName(name)) throw new RangeError(`classifier name ${JSON.stringify(name)} must match ${CLASSIFIER_NAME_PATTERN}`);
  }

  private serialize<T>(name: string, work: () => Promise<T>): Promise<T> {
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

/** temp file in the same directory -> write -> fsync -> rename -> fsync directory. */
export async function writeFileAtomic(dir: string, file: string, contents: string): Promise<void> {
  const temp = join(dir, `.${file}.${process.pid}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
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

/**
 * The classifier store on PostgreSQL, for several `skd serve` replicas that share their classifiers: one
 * table, one row per name (name, version, labels, head state, the rest of the record, created/updated).
 *
 * - Atomic writes and ordering per name: every write is one statement (INSERT ... ON CONFLICT, UPDATE or DELETE),
 *   so it applies whole under the row's lock, and whether a PUT created the name (`xmax = 0`) is decided by that
 *   statement, not by an earlier read.
 * - Durability: a write is acknowledged after its COMMIT returns, which with PostgreSQL's defaults
 *   (`fsync = on`, `synchronous_commit = on`) means the WAL record is on disk; a replica killed right after the
 *   answer, or the database crashing, loses nothing acknowledged.
 * - Optimistic concurrency: every write takes a new `version` from one sequence (a name deleted and created again
 *   never reuses a version), and the ETag is that version. If-Match / If-None-Match become a WHERE clause of the
 *   same statement, so a condition is checked and the write applied atomically.
 * - Replicas see each other's writes by versioned reads rather than LISTEN/NOTIFY: every GET and predict asks the
 *   table for the row's current version and transfers the head only when it differs from this replica's cached
 *   copy. That costs one indexed round trip per request, and in exchange a write acknowledged by replica A is
 *   visible on replica B's very next request, with no notification that can be missed while a connection is
 *   re-established and no window of stale answers. Listing always reads the table.
 */
import pg from 'pg';
import { UserError } from '../../data/errors.js';
import { validateRecord } from '../classifier-record.js';
import {
  PreconditionFailedError, StoreUnavailableError, checkClassifierName, summarize,
  type ClassifierStore, type ClassifierSummary, type StoredClassifier, type StoredEntry, type WriteCondition,
} from './store.js';

const TABLE = 'skd_classifiers';
const SEQUENCE = 'skd_classifier_versions';
/** Any fixed number: the advisory lock that serialises the schema set-up of replicas starting together. */
const SCHEMA_LOCK = 732_001;

const SCHEMA = `
CREATE SEQUENCE IF NOT EXISTS ${SEQUENCE};
CREATE TABLE IF NOT EXISTS ${TABLE} (
  name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
  version bigint NOT NULL,
  labels jsonb NOT NULL,
  head_kind text NOT NULL,
  head jsonb NOT NULL,
  record jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);`;

export interface PostgresStoreOptions {
  /** Most connections this replica opens. Default 8. */
  maxConnections?: number;
  /** Longest wait for a connection, in milliseconds. Default 5000. */
  connectTimeoutMs?: number;
}

/** The URL without its password, for log lines and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** The ETag of a row version, and back (undefined for a tag this store did not make). */
const tagOf = (version: string): string => `"v${version}"`;
function versionOf(tag: string): string | undefined {
  return /^"v(\d{1,19})"$/.exec(tag)?.[1];
}

/** Errors that mean the database is unreachable or going away, as opposed to a bug in a statement. */
function isUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (/^(08|57P|53)/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN'].includes(code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /timeout exceeded when trying to connect|Connection terminated|connection is closed|Client has encountered a connection error/i.test(message);
}

type WriteRow = { version: string; created: boolean };
type RecordColumns = Omit<StoredClassifier, 'labels' | 'head'>;

function splitRecord(c: StoredClassifier): { labels: string; head: string; record: string } {
  const { labels, head, ...rest } = c;
  return { labels: JSON.stringify(labels), head: JSON.stringify(head), record: JSON.stringify(rest) };
}

export class PostgresStore implements ClassifierStore {
  readonly skipped: { file: string; reason: string }[] = [];
  private count = 0;
  /** This replica's copies of rows it has read, by name, with the version they were read at. */
  private readonly cache = new Map<string, { version: string; entry: StoredEntry }>();

  private constructor(private readonly pool: pg.Pool, readonly location: string) {}

  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const location = redactUrl(url);
    const pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 8,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
      application_name: 'skd serve',
    });
    // An idle connection that the server closes must not bring the process down; the pool drops it.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, location);
    try {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
        await client.query(SCHEMA);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
      await store.refreshCount();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new UserError(`--store ${location}: cannot use the database (${(err as Error).message})`);
    }
    return store;
  }

  get size(): number {
    return this.count;
  }

  async get(name: string): Promise<StoredEntry | undefined> {
    const cached = this.cache.get(name);
    // The row's data travels only when its version differs from the cached copy's.
    const { rows } = await this.query<{ version: string; labels: string[] | null; head: unknown; record: RecordColumns | null }>(
      `SELECT version, CASE WHEN version = $2 THEN NULL ELSE labels END AS labels, CASE WHEN version = $2 THEN NULL ELSE head END AS head,
              CASE WHEN version = $2 THEN NULL ELSE record END AS record
         FROM ${TABLE} WHERE name = $1`,
      [name, cached?.version ?? '-1'], true,
    );
    const row = rows[0];
    if (!row) {
      this.cache.delete(name);
      return undefined;
    }
    if (cached && row.record === null) return cached.entry;
    const entry: StoredEntry = { classifier: { ...(row.record as RecordColumns), labels: row.labels as string[], head: row.head as StoredClassifier['head'] }, etag: tagOf(row.version) };
    this.cache.set(name, { version: row.version, entry });
    return entry;
  }

  async list(): Promise<ClassifierSummary[]> {
    const { rows } = await this.query<{ labels: string[]; record: RecordColumns }>(`SELECT labels, record FROM ${TABLE} ORDER BY name`, [], true);
    this.count = rows.length;
    return rows.map((r) => summarize({ ...r.record, labels: r.labels } as StoredClassifier));
  }

  async put(classifier: StoredClassifier, condition: WriteCondition = {}): Promise<{ created: boolean; etag: string }> {
    const name = classifier.name;
    checkClassifierName(name);
    validateRecord(classifier);
    const { labels, head, record } = splitRecord(classifier);
    const values = [name, labels, classifier.headKind, head, record];
    let rows: WriteRow[];
    if (condition.ifMatch !== undefined) {
      const versions = condition.ifMatch === '*' ? null : condition.ifMatch.map(versionOf).filter((v): v is string => v !== undefined);
      ({ rows } = await this.query<WriteRow>(
        `UPDATE ${TABLE} SET version = nextval('${SEQUENCE}'), labels = $2, head_kind = $3, head = $4, record = $5, updated_at = now()
          WHERE name = $1 AND ($6::bigint[] IS NULL OR version = ANY($6::bigint[])) RETURNING version, false AS created`,
        [...values, versions],
      ));
      if (rows.length === 0) throw await this.preconditionFailed(name, 'if-match');
    } else if (condition.ifNoneMatch === '*') {
      ({ rows } = await this.query<WriteRow>(
        `INSERT INTO ${TABLE} (name, version, labels, head_kind, head, record) VALUES ($1, nextval('${SEQUENCE}'), $2, $3, $4, $5)
         ON CONFLICT (name) DO NOTHING RETURNING version, true AS created`,
        values,
      ));
      if (rows.length === 0) throw await this.preconditionFailed(name, 'if-none-match');
    } else {
      ({ rows } = await this.query<WriteRow>(
        `INSERT INTO ${TABLE} (name, version, labels, head_kind, head, record) VALUES ($1, nextval('${SEQUENCE}'), $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, labels = EXCLUDED.labels, head_kind = EXCLUDED.head_kind,
           head = EXCLUDED.head, record = EXCLUDED.record, updated_at = now()
         RETURNING version, (xmax = 0) AS created`,
        values,
      ));
    }
    const row = rows[0]!;
    const etag = tagOf(row.version);
    this.cache.set(name, { version: row.version, entry: { classifier, etag } });
    if (row.created) this.count++;
    return { created: row.created, etag };
  }

  async delete(name: string, condition: WriteCondition = {}): Promise<boolean> {
    checkClassifierName(name);
    const versions = condition.ifMatch === undefined || condition.ifMatch === '*' ? null : condition.ifMatch.map(versionOf).filter((v): v is string => v !== undefined);
    const { rows } = await this.query(`DELETE FROM ${TABLE} WHERE name = $1 AND ($2::bigint[] IS NULL OR version = ANY($2::bigint[])) RETURNING version`, [name, versions]);
    this.cache.delete(name);
    if (rows.length === 0) {
      if (condition.ifMatch !== undefined) throw await this.preconditionFailed(name, 'if-match');
      return false;
    }
    this.count = Math.max(0, this.count - 1);
    return true;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async refreshCount(): Promise<void> {
    const { rows } = await this.query<{ n: string }>(`SELECT count(*) AS n FROM ${TABLE}`, [], true);
    this.count = Number(rows[0]?.n ?? 0);
  }

  /** The 412 for a failed condition, naming the row's current tag when there is one. */
  private async preconditionFailed(name: string, header: 'if-match' | 'if-none-match'): Promise<PreconditionFailedError> {
    const { rows } = await this.query<{ version: string }>(`SELECT version FROM ${TABLE} WHERE name = $1`, [name], true);
    const current = rows[0] ? tagOf(rows[0].version) : undefined;
    if (header === 'if-none-match') return new PreconditionFailedError(header, `classifier ${JSON.stringify(name)} already exists (ETag ${current ?? 'unknown'})`);
    return new PreconditionFailedError(header, current === undefined
      ? `there is no classifier named ${JSON.stringify(name)}`
      : `classifier ${JSON.stringify(name)} has changed: its ETag is now ${current}`);
  }

  /**
   * One statement on a pooled connection. A read that meets a dropped connection (the database restarted since
   * the connection was opened) is tried once more on a fresh one; writes are not, since the first may have applied.
   */
  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[], retryable = false): Promise<pg.QueryResult<R>> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.pool.query<R>(text, values);
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        if (retryable && attempt === 0) continue;
        throw new StoreUnavailableError(`the classifier store ${this.location} is unavailable (${(err as Error).message})`);
      }
    }
  }
}

/**
 * The folder store's guarantees that the routes rely on: only its own temporary files are cleaned up, the 201/200
 * of a PUT is decided inside the serialised write (not by a read before it), and entity tags with If-Match /
 * If-None-Match give optimistic concurrency.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '../infer/server/server.js';
import {
  FolderStore, NameQueue, STORE_FORMAT, STORE_VERSION,
  type ClassifierStore, type StoredClassifier, type StoredEntry, type WriteCondition,
} from '../infer/server/store.js';
import { COLOURS, FakeExtractor, rawImage, syntheticImage } from './serve-helpers.js';
import { FIXTURES } from './helpers/run-skd.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');

function classifier(name: string): StoredClassifier {
  return {
    format: STORE_FORMAT, version: STORE_VERSION, name, labels: ['a', 'b'], head: { kind: 'proto', version: 1, numClasses: 2, dim: 1, parameters: { prototypes: [0, 1] } },
    headKind: 'proto', featureDim: 1, modelSha256: 'a'.repeat(64), supportImages: 2, augment: 0, seed: 0, createdAt: new Date(0).toISOString(),
  };
}

const support = [0, 1].flatMap((k) => [0, 1].map((j) => ({ label: `c${k}`, image: rawImage(syntheticImage(32, COLOURS[k]!, 10 * k + j), 32, 32) })));

test('opening a store removes only the temporary files it creates, not other *.tmp files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-store-tmp-'));
  try {
    writeFileSync(join(dir, 'notes.tmp'), 'the user keeps this');
    writeFileSync(join(dir, '.backup.tmp'), 'and this');
    writeFileSync(join(dir, '.first.json.4242.0a1b2c3d4e5f.tmp'), '{"format":"skd-cla');
    await FolderStore.open(dir);
    assert.ok(existsSync(join(dir, 'notes.tmp')));
    assert.ok(existsSync(join(dir, '.backup.tmp')));
    assert.ok(!existsSync(join(dir, '.first.json.4242.0a1b2c3d4e5f.tmp')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a PUT queued behind a DELETE of the same name reports that it created the name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-store-race-'));
  try {
    const store = await FolderStore.open(dir);
    await store.put(classifier('a'));
    const deleted = store.delete('a');
    const put = store.put(classifier('a'));
    assert.equal(await deleted, true);
    assert.equal((await put).created, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A store whose deletes wait for a gate: it keeps the per-name order of the contract (a put asked for after a
 * delete applies after it), and lets the test hold a DELETE between being asked for and being applied.
 */
class GatedStore implements ClassifierStore {
  private readonly queue = new NameQueue();
  private open!: () => void;
  private readonly gate = new Promise<void>((r) => (this.open = r));
  deleteAsked!: () => void;
  readonly deleteCalled = new Promise<void>((r) => (this.deleteAsked = r));
  putAsked!: () => void;
  readonly putCalled = new Promise<void>((r) => (this.putAsked = r));
  constructor(private readonly inner: FolderStore) {}
  get location(): string { return this.inner.location; }
  get skipped() { return this.inner.skipped; }
  get size(): number { return this.inner.size; }
  release(): void { this.open(); }
  get(name: string): Promise<StoredEntry | undefined> { return this.inner.get(name); }
  list() { return this.inner.list(); }
  put(c: StoredClassifier, condition?: WriteCondition) {
    this.putAsked();
    return this.queue.run(c.name, () => this.inner.put(c, condition));
  }
  delete(name: string, condition?: WriteCondition) {
    this.deleteAsked();
    return this.queue.run(name, async () => {
      await this.gate;
      return this.inner.delete(name, condition);
    });
  }
  close() { return this.inner.close(); }
}

test('PUT answers 201 when a DELETE of the same name applied just before its write', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-store-route-'));
  try {
    const store = new GatedStore(await FolderStore.open(dir));
    const { app } = await createServer({ extractor: new FakeExtractor(32), modelPath: MODEL, storeDir: dir, store });
    try {
      const first = await app.inject({ method: 'PUT', url: '/v1/classifiers/a', payload: { support } });
      assert.equal(first.statusCode, 201);
      const deleting = app.inject({ method: 'DELETE', url: '/v1/classifiers/a' });
      await store.deleteCalled;
      const putting = app.inject({ method: 'PUT', url: '/v1/classifiers/a', payload: { support } });
      await store.putCalled.then(() => new Promise((r) => setTimeout(r, 20)));
      store.release();
      const [del, put] = await Promise.all([deleting, putting]);
      assert.equal(del.statusCode, 200);
      assert.equal(put.statusCode, 201, 'the DELETE applied first, so this PUT created the classifier again');
      assert.equal((await app.inject({ method: 'GET', url: '/v1/classifiers/a' })).statusCode, 200);
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ETag and If-Match / If-None-Match on the folder store: stale tags get 412, current ones apply', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skd-store-etag-'));
  try {
    const { app } = await createServer({ extractor: new FakeExtractor(32), modelPath: MODEL, storeDir: dir });
    try {
      const put = (headers: Record<string, string> = {}) => app.inject({ method: 'PUT', url: '/v1/classifiers/x', payload: { support }, headers });
      assert.equal((await put({ 'if-match': '*' })).statusCode, 412, 'If-Match: * needs an existing record');
      const created = await put({ 'if-none-match': '*' });
      assert.equal(created.statusCode, 201);
      const tag1 = created.headers.etag as string;
      assert.match(tag1, /^"[0-9a-f]+"$/);
      const got = await app.inject({ method: 'GET', url: '/v1/classifiers/x' });
      assert.equal(got.headers.etag, tag1);
      const again = await put({ 'if-none-match': '*' });
      assert.equal(again.statusCode, 412);
      assert.equal(JSON.parse(again.body).field, 'headers.if-none-match');
      const replaced = await put({ 'if-match': tag1 });
      assert.equal(replaced.statusCode, 200);
      const tag2 = replaced.headers.etag as string;
      assert.notEqual(tag2, tag1);
      const stale = await put({ 'if-match': tag1 });
      assert.equal(stale.statusCode, 412);
      assert.equal(JSON.parse(stale.body).field, 'headers.if-match');
      assert.match(JSON.parse(stale.body).message, /has changed/);
      assert.equal((await app.inject({ method: 'DELETE', url: '/v1/classifiers/x', headers: { 'if-match': tag1 } })).statusCode, 412);
      assert.equal((await app.inject({ method: 'DELETE', url: '/v1/classifiers/x', headers: { 'if-match': `"other", ${tag2}` } })).statusCode, 200);
      const bad = await app.inject({ method: 'DELETE', url: '/v1/classifiers/x', headers: { 'if-match': 'no-quotes' } });
      assert.equal(bad.statusCode, 400);
      assert.equal(JSON.parse(bad.body).field, 'headers.if-match');
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

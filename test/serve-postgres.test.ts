/**
 * The PostgreSQL classifier store with a cluster of its own (initdb + pg_ctl in a temporary folder, loopback
 * port): two `skd serve` replicas share it; a PUT on one is listed and predicted on the other; stale If-Match
 * gets 412; nothing acknowledged is lost when a replica is SIGKILLed right after answering, nor when the
 * database itself crashes; a database that is down gives 503 naming the store.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PostgresStore } from '../infer/server/store-postgres.js';
import { STORE_FORMAT, STORE_VERSION, type StoredClassifier } from '../infer/server/store.js';
import { startPostgres, type PostgresCluster } from './helpers/postgres.js';
import { FIXTURES } from './helpers/run-skd.js';
import { spawnServe, type ServeProcess } from './helpers/serve-process.js';
import { COLOURS, rawImage, request, syntheticImage } from './serve-helpers.js';

const MODEL = join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx');
const FOREIGN = ['--layout', 'nchw', '--size', '32', '--mean', '0.5071,0.4867,0.4408', '--std', '0.2675,0.2565,0.2761', '--device', 'cpu', '--threads', '1'];

let pg: PostgresCluster;
const replicas: ServeProcess[] = [];

before(async () => {
  pg = await startPostgres();
});

after(async () => {
  for (const r of replicas) await r.stop('SIGKILL');
  await pg?.destroy();
});

async function replica(): Promise<ServeProcess> {
  const r = await spawnServe(['--model', MODEL, '--store', pg.url, ...FOREIGN]);
  replicas.push(r);
  return r;
}

const support = [0, 1, 2].flatMap((k) => [0, 1].map((j) => ({ label: `c${k}`, image: rawImage(syntheticImage(32, COLOURS[k]!, 10 * k + j), 32, 32) })));
const queries = [0, 1, 2].map((k) => rawImage(syntheticImage(32, COLOURS[k]!, 500 + k), 32, 32));

function classifier(name: string, labels: string[]): StoredClassifier {
  return {
    format: STORE_FORMAT, version: STORE_VERSION, name, labels, head: { kind: 'proto', version: 1, numClasses: labels.length, dim: 1, parameters: { prototypes: labels.map((_, i) => i / 3 + 1e-7) } },
    headKind: 'proto', featureDim: 1, modelSha256: 'a'.repeat(64), supportImages: 2, augment: 0, seed: 0, createdAt: new Date(0).toISOString(),
  };
}

test('the store keeps records exactly, with versions as ETags, and sees another connection\'s writes', async () => {
  const a = await PostgresStore.open(pg.url);
  const b = await PostgresStore.open(pg.url);
  try {
    const first = await a.put(classifier('shared', ['x', 'y']));
    assert.equal(first.created, true);
    assert.match(first.etag, /^"v\d+"$/);
    assert.deepEqual((await b.get('shared'))?.classifier, classifier('shared', ['x', 'y']));
    const second = await b.put(classifier('shared', ['p', 'q', 'r']), { ifMatch: [first.etag] });
    assert.equal(second.created, false);
    // a's next read sees b's write (versioned read), not its own cached copy.
    const seen = await a.get('shared');
    assert.deepEqual(seen?.classifier.labels, ['p', 'q', 'r']);
    assert.equal(seen?.etag, second.etag);
    await assert.rejects(a.put(classifier('shared', ['x', 'y']), { ifMatch: [first.etag] }), { name: 'PreconditionFailedError', message: /has changed/ });
    await assert.rejects(a.put(classifier('shared', ['x', 'y']), { ifNoneMatch: '*' }), { name: 'PreconditionFailedError' });
    await assert.rejects(a.delete('shared', { ifMatch: ['"v1"'] }), { name: 'PreconditionFailedError' });
    assert.equal(await b.delete('shared'), true);
    assert.equal(await a.get('shared'), undefined);
    assert.equal(await a.delete('shared'), false);
    // A name deleted and created again gets a new version, so an old tag cannot match it.
    const third = await a.put(classifier('shared', ['x', 'y']));
    assert.equal(third.created, true);
    assert.notEqual(third.etag, first.etag);
    assert.deepEqual((await b.list()).map((c) => c.name), ['shared']);
    assert.equal(await b.delete('shared'), true);
  } finally {
    await a.close();
    await b.close();
  }
});

test('two replicas share classifiers: PUT on A is listed and predicted on B; a stale If-Match gets 412', async () => {
  const [a, b] = await Promise.all([replica(), replica()]);
  const put = await request(a.url, 'PUT', '/v1/classifiers/colours', { support });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  const etag = put.headers.get('etag')!;
  const listed = await request(b.url, 'GET', '/v1/classifiers');
  assert.deepEqual(listed.body.classifiers.map((c: { name: string }) => c.name), ['colours']);
  const onA = await request(a.url, 'POST', '/v1/classifiers/colours/predict', { queries });
  const onB = await request(b.url, 'POST', '/v1/classifiers/colours/predict', { queries });
  assert.equal(onB.status, 200, JSON.stringify(onB.body));
  assert.deepEqual(onB.body, onA.body);
  assert.deepEqual(onB.body.predictions.map((p: { label: string }) => p.label), ['c0', 'c1', 'c2']);
  assert.equal((await request(b.url, 'GET', '/v1/classifiers/colours')).headers.get('etag'), etag);

  // B replaces it with the current tag; A, still holding the old one, is refused.
  const replaced = await request(b.url, 'PUT', '/v1/classifiers/colours', { support: support.slice(0, 4) }, { 'if-match': etag });
  assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
  const stale = await request(a.url, 'PUT', '/v1/classifiers/colours', { support }, { 'if-match': etag });
  assert.equal(stale.status, 412);
  assert.equal(stale.body.field, 'headers.if-match');
  const staleDelete = await request(a.url, 'DELETE', '/v1/classifiers/colours', undefined, { 'if-match': etag });
  assert.equal(staleDelete.status, 412);
  assert.deepEqual((await request(a.url, 'GET', '/v1/classifiers/colours')).body.labels, ['c0', 'c1']);
  assert.equal((await request(a.url, 'DELETE', '/v1/classifiers/colours', undefined, { 'if-match': replaced.headers.get('etag')! })).status, 200);
  assert.equal((await request(b.url, 'GET', '/v1/classifiers/colours')).status, 404);
  await Promise.all([a.stop(), b.stop()]);
});

test('nothing acknowledged is lost: a replica SIGKILLed right after its answer, then the database crashing', async () => {
  const a = await replica();
  const put = await request(a.url, 'PUT', '/v1/classifiers/durable', { support });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  a.child.kill('SIGKILL');
  await a.exited;
  const b = await replica();
  assert.equal((await request(b.url, 'GET', '/v1/classifiers/durable')).status, 200);
  const second = await request(b.url, 'PUT', '/v1/classifiers/durable2', { support });
  assert.equal(second.status, 201);
  // The database goes down hard right after acknowledging: requests that need it get 503 naming the store.
  await pg.crash();
  const down = await request(b.url, 'GET', '/v1/classifiers');
  assert.equal(down.status, 503, JSON.stringify(down.body));
  assert.equal(down.body.field, 'store');
  await pg.start();
  const back = await request(b.url, 'GET', '/v1/classifiers');
  assert.equal(back.status, 200, JSON.stringify(back.body));
  const names = back.body.classifiers.map((c: { name: string }) => c.name);
  assert.ok(names.includes('durable') && names.includes('durable2'), names.join(', '));
  const predicted = await request(b.url, 'POST', '/v1/classifiers/durable2/predict', { queries });
  assert.equal(predicted.status, 200);
  await b.stop();
});

test('skd serve --store with an unreachable database ends with one clear line', async () => {
  await assert.rejects(spawnServe(['--model', MODEL, '--store', 'postgres://skd:secret@127.0.0.1:1/postgres', ...FOREIGN]), (err: Error) => {
    assert.match(err.message, /--store postgres:\/\/skd:\*\*\*@127\.0\.0\.1:1\/postgres: cannot use the database/);
    assert.doesNotMatch(err.message, /secret|\n\s+at /);
    return true;
  });
});

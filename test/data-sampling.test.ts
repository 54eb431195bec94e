import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../data/rng.js';
import { checkEpisodeFeasible, sampleEpisode, tileSupport, type EpisodeOptions } from '../data/episodes.js';
import { UserError } from '../data/errors.js';
import { FIXTURES } from './helpers/run-skd.js';

// Expected numbers from numpy's legacy RandomState (see the fixture's "script" field for how they were made).
const NP = JSON.parse(readFileSync(join(FIXTURES, 'rng', 'numpy_legacy.json'), 'utf8'));

test('Rng matches numpy RandomState: random_sample, randint, permutation, choice, shuffle', () => {
  let r = new Rng(0);
  assert.deepEqual(Array.from({ length: 5 }, () => r.random()), NP.seed0_random_sample_5);
  r = new Rng(4294967295);
  assert.deepEqual(Array.from({ length: 3 }, () => r.random()), NP.seed4294967295_random_sample_3);
  r = new Rng(12345);
  assert.deepEqual(Array.from({ length: 10 }, () => r.randint(10)), NP.seed12345_randint10_x10);
  r = new Rng(7);
  assert.deepEqual(Array.from({ length: 8 }, () => r.randint(1000)), NP.seed7_randint1000_x8);
  assert.deepEqual(Array.from(new Rng(1).permutation(10)), NP.seed1_permutation10);
  assert.deepEqual(Array.from(new Rng(3).choice(100, 5)), NP.seed3_choice100_5);
  assert.deepEqual(Array.from(new Rng(5).permutation(1000).subarray(0, 20)), NP.seed5_permutation1000_head20);
  const a = Array.from({ length: 50 }, (_, i) => i);
  assert.deepEqual(new Rng(9).shuffleInPlace(a), NP.seed9_shuffle50);
  r = new Rng(11);
  for (let i = 0; i < 700; i++) r.random(); // crosses a state regeneration
  assert.deepEqual([r.random(), r.random()], NP.seed11_after700_random_sample_2);
});

test('Rng state round-trips through JSON; derived streams are reproducible and distinct', () => {
  const r = new Rng(42);
  for (let i = 0; i < 1000; i++) r.nextUint32();
  const copy = Rng.fromState(JSON.parse(JSON.stringify(r.getState())));
  assert.deepEqual(Array.from({ length: 700 }, () => copy.nextUint32()), Array.from({ length: 700 }, () => r.nextUint32()));
  assert.equal(Rng.derive(3, 7).nextUint32(), Rng.derive(3, 7).nextUint32());
  const firsts = new Set<number>();
  for (let s = 0; s < 5; s++) for (let i = 0; i < 200; i++) firsts.add(Rng.derive(s, i).nextUint32());
  assert.equal(firsts.size, 1000);
  assert.throws(() => new Rng(-1), RangeError);
  assert.throws(() => Rng.fromState({ key: [1, 2], pos: 0 }), RangeError);
});

test('episodes are the reference draws (np.random.seed(i), legacy choice, setxor1d)', () => {
  const f = NP.episodes;
  const labels = Int32Array.from(f.labels as number[]);
  const opts: EpisodeOptions = { nWays: f.nWays, nShots: f.nShots, nQueries: f.nQueries, seed: f.seed };
  for (const e of f.episodes) {
    const ep = sampleEpisode(labels, f.numClasses, e.index, opts);
    assert.deepEqual(Array.from(ep.classes), e.classes);
    assert.deepEqual(Array.from(ep.supportIdx), e.supportIdx);
    assert.deepEqual(Array.from(ep.queryIdx), e.queryIdx);
  }
});

function toyLabels(classes: number, perClass: number): Int32Array {
  const l = new Int32Array(classes * perClass);
  for (let i = 0; i < l.length; i++) l[i] = i % classes;
  return l;
}

test('episodes: same seed same episode, other seed other episode, support and queries disjoint and labelled', () => {
  const labels = toyLabels(20, 30);
  const opts = { nWays: 5, nShots: 5, nQueries: 15, seed: 0 };
  const a = sampleEpisode(labels, 20, 3, opts);
  const b = sampleEpisode(labels, 20, 3, opts);
  assert.deepEqual(a, b);
  const c = sampleEpisode(labels, 20, 3, { ...opts, seed: 1 });
  assert.notDeepEqual(Array.from(c.queryIdx), Array.from(a.queryIdx));
  assert.notDeepEqual(Array.from(sampleEpisode(labels, 20, 4, opts).queryIdx), Array.from(a.queryIdx));
  for (let i = 0; i < 50; i++) {
    const ep = sampleEpisode(labels, 20, i, opts);
    assert.equal(new Set(ep.classes).size, 5);
    const support = new Set(ep.supportIdx);
    assert.equal(support.size, 25);
    for (const q of ep.queryIdx) assert.ok(!support.has(q), 'a query is also a support image');
    assert.equal(new Set(ep.queryIdx).size, 75);
    ep.supportIdx.forEach((idx, j) => {
      assert.equal(ep.supportLabels[j], Math.floor(j / 5));
      assert.equal(labels[idx], ep.classes[ep.supportLabels[j]]);
    });
    ep.queryIdx.forEach((idx, j) => {
      assert.equal(ep.queryLabels[j], Math.floor(j / 15));
      assert.equal(labels[idx], ep.classes[ep.queryLabels[j]]);
    });
  }
  const tiled = tileSupport(a, 5);
  assert.equal(tiled.indices.length, 125);
  assert.deepEqual(Array.from(tiled.indices.subarray(50, 75)), Array.from(a.supportIdx));
  assert.deepEqual(Array.from(tiled.labels.subarray(100)), Array.from(a.supportLabels));
});

test('infeasible episodes are refused with a UserError naming the class', () => {
  const labels = toyLabels(4, 30);
  assert.throws(() => checkEpisodeFeasible(labels, 4, { nWays: 5, nShots: 1, nQueries: 15, seed: 0 }), (e: Error) => e instanceof UserError && /5-way episodes need at least 5 classes, but the set has 4/.test(e.message));
  const uneven = Int32Array.from([...toyLabels(5, 20), 5, 5, 5]);
  assert.throws(() => checkEpisodeFeasible(uneven, 6, { nWays: 5, nShots: 1, nQueries: 15, seed: 0 }, ['a', 'b', 'c', 'd', 'e', 'sparse']), (e: Error) => e instanceof UserError && /"sparse" \(class 5\) has 3 images, but 1-shot episodes with 15 queries need 16/.test(e.message));
  checkEpisodeFeasible(uneven, 6, { nWays: 5, nShots: 1, nQueries: 2, seed: 0 });
  assert.throws(() => sampleEpisode(labels, 4, 0, { nWays: 2, nShots: 0, nQueries: 1, seed: 0 }), UserError);
});

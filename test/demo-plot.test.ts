import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME, PANEL_H, PANEL_W, renderCurvesSvg } from '../demo/plot.js';
import { StepLosses, trainingCurvePanels, type GenerationCurves } from '../demo/curves.js';
import type { EpochRecord } from '../train/types.js';

const val = (accuracy: number) => ({ ways: 5, shots: 1, queries: 15, episodes: 30, accuracy, ci95: 3 });
const epoch = (generation: number, e: number, loss: number, acc: number, parts: Record<string, number>, v?: number): EpochRecord =>
  ({ generation, epoch: e, lr: 0.05, steps: 30, loss, parts, acc, ...(v === undefined ? {} : { val: val(v) }) }) as EpochRecord;

// The --quick shape: three Gen-0 epochs (validated at the last), one Gen-1 epoch.
const gen0: GenerationCurves = {
  history: [epoch(0, 1, 5.6, 2.1, { ce: 4.2, ss: 0.7 }), epoch(0, 2, 4.9, 3.5, { ce: 3.7, ss: 0.6 }), epoch(0, 3, 4.5, 4.8, { ce: 3.4, ss: 0.55 }, 41.5)],
  initialValidation: val(24.3), config: { gamma: 2 },
};
const gen1: GenerationCurves = { history: [epoch(1, 1, 0.9, 4.4, { kd: 0.7, l2: 0.6 }, 42.8)], initialValidation: val(41.5), config: { gamma: 0.1 } };

function steps(): StepLosses {
  const s = new StepLosses();
  for (const [generation, epochs] of [[0, 3], [1, 1]] as const) {
    for (let e = 1; e <= epochs; e++) {
      let sum = 0;
      for (let k = 1; k <= 30; k++) {
        const loss = 6 - generation * 5 - 0.02 * (30 * (e - 1) + k) + 0.1 * Math.sin(k);
        sum += loss;
        const parts: Record<string, number> = generation === 0 ? { ce: (sum / k) * 0.8, ss: (sum / k) * 0.1 } : { kd: (sum / k) * 0.7, l2: (sum / k) * 0.9 };
        s.record({ generation, epoch: e, epochs, step: k, steps: 30, lr: 0.05, loss: sum / k, parts, acc: 1, imagesPerSecond: 1 });
      }
    }
  }
  return s;
}

const svg = renderCurvesSvg(trainingCurvePanels(gen0, gen1, { trainClasses: 64, valWays: 5, steps: steps() }), 'curves');
const num = (s: string, name: string) => Number(new RegExp(`\\b${name}="([-0-9.]+)"`).exec(s)![1]);

interface Box { x0: number; y0: number; x1: number; y1: number }
const frames: Box[] = [...svg.matchAll(/<rect class="frame"[^>]*>/g)].map(([m]) => {
  const x = num(m, 'x'), y = num(m, 'y');
  return { x0: x, y0: y, x1: x + num(m, 'width'), y1: y + num(m, 'height') };
});
const frameOf = (x: number, y: number) => frames.find((f) => x >= f.x0 - PANEL_W / 2 && x <= f.x1 + FRAME.right && y >= f.y0 - FRAME.top && y <= f.y1 + FRAME.bottom);
const pathPoints = (d: string) => [...d.matchAll(/[ML]([-0-9.]+),([-0-9.]+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);

test('curves.svg: four panels, each with a frame, both axis labels and a legend above the frame', () => {
  assert.equal(frames.length, 4);
  const labels = [...svg.matchAll(/<text class="axis-label"[^>]*>([^<]+)<\/text>/g)].map((m) => m[1]!);
  assert.equal(labels.length, 8);
  assert.equal(labels.filter((l) => /^epoch/.test(l)).length, 4);
  assert.deepEqual(labels.filter((l) => !/^epoch/.test(l)), ['loss', 'loss', 'accuracy (%)', 'accuracy (%)']);
  const legends = [...svg.matchAll(/<g class="legend"><line x1="([-0-9.]+)" x2="[-0-9.]+" y1="([-0-9.]+)"[^>]*\/><text x="[-0-9.]+" y="([-0-9.]+)"/g)];
  assert.ok(legends.length >= 10, `${legends.length} legend entries`);
  for (const m of legends) {
    const x = Number(m[1]), y = Number(m[3]);
    const f = frameOf(x, y);
    assert.ok(f, `legend at ${x},${y} belongs to a panel`);
    // Text baseline plus descenders stays above the frame, so no legend sits on a line.
    assert.ok(y + 3 < f.y0, `legend at y=${y} is above the frame top ${f.y0}`);
  }
});

test('curves.svg: every line and dot lies inside its frame, not on it', () => {
  const inside = (x: number, y: number, margin: number) => frames.some((f) => x - margin > f.x0 && x + margin < f.x1 && y - margin > f.y0 && y + margin < f.y1);
  const circles = [...svg.matchAll(/<circle [^>]*>/g)].map(([c]) => [num(c, 'cx'), num(c, 'cy'), num(c, 'r')] as const);
  assert.ok(circles.length >= 8);
  for (const [x, y, r] of circles) assert.ok(inside(x, y, r), `dot at ${x},${y} is inside a frame`);
  const paths = [...svg.matchAll(/<path class="series"[^>]* d="([^"]+)"/g)].map((m) => pathPoints(m[1]!));
  for (const p of paths) for (const [x, y] of p) assert.ok(inside(x, y, 0), `line point ${x},${y} is inside a frame`);
  for (const [, cy] of circles) assert.ok(cy < PANEL_H * 2 + 30);
});

test('curves.svg: Gen-1 is a connected line that starts where Gen-0 ends, and losses are per step', () => {
  const series = (name: string) => [...svg.matchAll(new RegExp(`<path class="series" data-series="${name}" d="([^"]+)"`, 'g'))].map((m) => pathPoints(m[1]!));
  const g0 = series('Gen-0'), g1 = series('Gen-1');
  assert.equal(g0.length, 2, 'Gen-0 lines in the accuracy and validation panels');
  assert.equal(g1.length, 2, 'Gen-1 lines (one epoch) in the accuracy and validation panels');
  for (let i = 0; i < 2; i++) {
    assert.equal(g1[i]!.length, 2);
    assert.deepEqual(g1[i]![0], g0[i]![g0[i]!.length - 1], 'Gen-1 starts at Gen-0\'s last point');
  }
  assert.equal(g0[1]!.length, 2, 'validation: untrained (epoch 0) and epoch 3');
  const totals = series('total');
  assert.equal(totals.length, 2);
  assert.ok(totals[1]!.length >= 4, `the one-epoch Gen-1 loss is a line of ${totals[1]!.length} points`);
});

test('curves.svg: the accuracy panels say what chance is, and a panel without validation says why', () => {
  assert.match(svg, /all 64 training classes, augmented batches: chance is 1\.6%/);
  assert.match(svg, /prototype head; epoch 0 = untrained; chance is 20%/);
  assert.equal([...svg.matchAll(/<line class="reference"/g)].length, 2);
  const off = renderCurvesSvg(trainingCurvePanels({ ...gen0, initialValidation: undefined, history: gen0.history.map((r) => ({ ...r, val: undefined })) },
    { ...gen1, initialValidation: undefined, history: gen1.history.map((r) => ({ ...r, val: undefined })) }, { trainClasses: 64, valWays: 5 }), 'x');
  assert.match(off, /validation was off \(--val-every 0\)/);
  assert.doesNotMatch(off, /no data/);
});

test('StepLosses recovers each step\'s value from the running means', () => {
  const s = new StepLosses();
  const values = [2, 4, 9, 1];
  let sum = 0;
  values.forEach((v, i) => { sum += v; s.record({ generation: 0, epoch: 1, epochs: 1, step: i + 1, steps: 4, lr: 1, loss: sum / (i + 1), parts: {}, acc: 0, imagesPerSecond: 0 }); });
  const series = s.series(0, 'loss', 'total', 0)!;
  assert.deepEqual(series.points.map((p) => +p.y!.toFixed(9)), values);
  assert.deepEqual(series.points.map((p) => p.x), [0.25, 0.5, 0.75, 1]);
});

test('the loss panels draw each part at its weight in the total', () => {
  // Per epoch (no step records): Gen-1 epoch 1 has kd 0.7 and l2 0.6 with gamma 0.1, so γ·L2/3 = 0.02.
  const panels = trainingCurvePanels(gen0, gen1, { trainClasses: 64, valWays: 5 });
  const [loss0, loss1] = panels;
  assert.deepEqual(loss0!.series.map((s) => s.label), ['total', 'CE', 'γ·BCE']);
  assert.deepEqual(loss0!.series[2]!.points.map((p) => p.y), [1.4, 1.2, 1.1]);
  assert.deepEqual(loss1!.series.map((s) => s.label), ['total', 'KD', 'γ·L2/3']);
  assert.ok(Math.abs(loss1!.series[2]!.points[0]!.y! - 0.02) < 1e-12);
  assert.match(loss1!.title, /γ = 0\.1/);
});

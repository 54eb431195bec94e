/**
 * The demo's training curves: what each panel of curves.svg shows, from the epoch records of both generations and
 * the per-step losses recorded through the training hooks. Gen-1 continues after Gen-0 on one epoch axis.
 */
import type { StepInfo, TrainHooks } from '../train/progress.js';
import type { EpochRecord, ValidationRecord } from '../train/types.js';
import type { Panel, Series } from './plot.js';

export interface GenerationCurves {
  history: EpochRecord[];
  /** Validation before the first epoch (Gen-0: the untrained network; Gen-1: the student, equal to its teacher). */
  initialValidation?: ValidationRecord;
  /** The weight of the self-supervised term, to draw each loss part as its share of the total. */
  config: { gamma: number };
}

/** Points per epoch of a per-step loss curve (steps are averaged in blocks to keep the line readable). */
const POINTS_PER_EPOCH = 8;

/** Records every optimiser step's loss and loss parts (the hooks report running means over the epoch). */
export class StepLosses {
  private readonly steps: { generation: number; x: number; values: Record<string, number> }[] = [];
  private previous: StepInfo | null = null;

  /** The same hooks, also recording each step. */
  wrap(hooks: TrainHooks): TrainHooks {
    return { ...hooks, onStep: (s) => { this.record(s); hooks.onStep?.(s); } };
  }

  record(s: StepInfo): void {
    const prev = this.previous && this.previous.generation === s.generation && this.previous.epoch === s.epoch && this.previous.step === s.step - 1 ? this.previous : null;
    // The step's own value from two running means: m_s * s - m_(s-1) * (s - 1).
    const own = (now: number, before: number | undefined) => (prev && before !== undefined ? now * s.step - before * (s.step - 1) : now);
    const values: Record<string, number> = { loss: own(s.loss, prev?.loss) };
    for (const [k, v] of Object.entries(s.parts)) values[k] = own(v, prev?.parts[k]);
    this.steps.push({ generation: s.generation, x: s.epoch - 1 + s.step / s.steps, values });
    this.previous = s;
  }

  /** One generation's per-step values of `key` times `scale`, averaged over blocks of steps, at epoch positions plus `shift`. */
  series(generation: number, key: string, label: string, shift: number, scale = 1): Series | null {
    const rows = this.steps.filter((r) => r.generation === generation && Number.isFinite(r.values[key]));
    if (rows.length < 2) return null;
    const stepsPerEpoch = rows.filter((r) => r.x <= 1).length || rows.length;
    const block = Math.max(1, Math.round(stepsPerEpoch / POINTS_PER_EPOCH));
    const points: { x: number; y: number }[] = [];
    for (let i = 0; i < rows.length; i += block) {
      const chunk = rows.slice(i, i + block);
      points.push({ x: chunk[chunk.length - 1]!.x + shift, y: (scale * chunk.reduce((a, r) => a + r.values[key]!, 0)) / chunk.length });
    }
    return { label, points, markers: false };
  }
}

const epochSeries = (label: string, records: EpochRecord[], shift: number, pick: (r: EpochRecord) => number | undefined): Series => ({
  label, points: records.map((r) => ({ x: r.epoch + shift, y: pick(r) ?? null })),
});

/**
 * The loss series of one generation, per step where recorded, else per epoch: the total and each part times its
 * weight in the total (so that the parts add up to it).
 */
function lossSeries(steps: StepLosses | undefined, generation: number, records: EpochRecord[], shift: number, parts: [key: string, label: string, weight: number][]): Series[] {
  return [['loss', 'total', 1] as [string, string, number], ...parts].map(([key, label, weight]) =>
    steps?.series(generation, key, label, shift, weight) ??
    epochSeries(label, records, shift, (r) => (key === 'loss' ? r.loss : r.parts[key] === undefined ? undefined : weight * r.parts[key]!)));
}

function lossPanel(title: string, xLabel: string, series: Series[]): Panel {
  const perStep = series.some((s) => s.markers === false);
  return { title, xLabel, yLabel: 'loss', series, note: `the parts add up to the total; ${perStep ? 'means over blocks of training steps' : 'means over each epoch'}` };
}

/**
 * The four panels: each generation's loss, training accuracy, few-shot validation. `trainClasses` and `valWays`
 * give the chance levels the accuracy panels draw.
 */
export function trainingCurvePanels(gen0: GenerationCurves, gen1: GenerationCurves, opts: { trainClasses: number; valWays: number; steps?: StepLosses }): Panel[] {
  const offset = gen0.history.length;
  const xLabel = 'epoch (Gen-1 continues after Gen-0)';
  const last0 = gen0.history[gen0.history.length - 1];
  // Gen-1's student starts from Gen-0's final weights: its lines start where Gen-0's end.
  const continued = (label: string, pick: (r: EpochRecord) => number | undefined, start: number | undefined): Series => {
    const s = epochSeries(label, gen1.history, offset, pick);
    return start === undefined ? s : { ...s, points: [{ x: offset, y: start }, ...s.points] };
  };
  const valStart0 = gen0.initialValidation ? [{ x: 0, y: gen0.initialValidation.accuracy }] : [];
  const lastVal0 = [...gen0.history].reverse().find((r) => r.val)?.val;
  const chanceTrain = 100 / opts.trainClasses, chanceVal = 100 / opts.valWays;
  const fmt = (v: number) => v.toFixed(v < 10 ? 1 : 0);
  const g0 = gen0.config.gamma, g1 = gen1.config.gamma;
  return [
    lossPanel(`Gen-0 loss = CE + γ·BCE(rotation), γ = ${g0}`, xLabel, lossSeries(opts.steps, 0, gen0.history, 0, [['ce', 'CE', 1], ['ss', 'γ·BCE', g0]])),
    lossPanel(`Gen-1 loss = KD + γ·L2/3, γ = ${g1}`, xLabel,
      lossSeries(opts.steps, gen1.history[0]?.generation ?? 1, gen1.history, offset, [['kd', 'KD', 1], ['l2', 'γ·L2/3', g1 / 3]])),
    { title: `training accuracy, ${opts.trainClasses}-way (%)`, xLabel, yLabel: 'accuracy (%)',
      note: `all ${opts.trainClasses} training classes, augmented batches: chance is ${fmt(chanceTrain)}%`,
      reference: { y: chanceTrain, label: `chance ${fmt(chanceTrain)}%` },
      series: [epochSeries('Gen-0', gen0.history, 0, (r) => r.acc), continued('Gen-1', (r) => r.acc, last0?.acc)] },
    { title: `few-shot validation, ${opts.valWays}-way 1-shot (%)`, xLabel, yLabel: 'accuracy (%)',
      note: `unseen val classes, prototype head; epoch 0 = untrained; chance is ${fmt(chanceVal)}%`,
      reference: { y: chanceVal, label: `chance ${fmt(chanceVal)}%` },
      empty: 'validation was off (--val-every 0)',
      series: [
        { ...epochSeries('Gen-0', gen0.history, 0, (r) => r.val?.accuracy), points: [...valStart0, ...epochSeries('', gen0.history, 0, (r) => r.val?.accuracy).points] },
        continued('Gen-1', (r) => r.val?.accuracy, gen1.initialValidation?.accuracy ?? lastVal0?.accuracy),
      ] },
  ];
}

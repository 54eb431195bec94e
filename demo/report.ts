/** The demo's report: one JSON document, rendered as a terminal table and as Markdown. */

export type DemoModel = 'untrained' | 'gen0' | 'gen1';

export interface EvalRow {
  model: DemoModel;
  nWays: number;
  nShots: number;
  episodes: number;
  /** Mean accuracy in percent and the 95% half-width (t quantile). */
  mean: number;
  halfWidth: number;
  seconds: number;
}

export interface TrainSummary {
  generation: 0 | 1;
  epochs: number;
  seconds: number;
  /** Training images per second, counting every rotated copy the network saw. */
  imagesPerSecond: number;
  finalLoss: number;
}

export interface DemoReport {
  tool: string;
  version: string;
  createdAt: string;
  backend: string;
  quick: boolean;
  config: Record<string, unknown>;
  training: TrainSummary[];
  exportCheck: { model: DemoModel; maxAbsDiff: number; maxRelDiff: number }[];
  evaluation: EvalRow[];
  /** Honest comparisons, in points of 5-way 1-shot accuracy, on the same episodes. */
  findings: string[];
  artefacts: Record<string, string>;
  totalSeconds: number;
}

const MODEL_LABEL: Record<DemoModel, string> = { untrained: 'untrained (random init)', gen0: 'SKD Gen-0', gen1: 'SKD Gen-1' };

function fmtAcc(r: EvalRow | undefined): string {
  return r ? `${r.mean.toFixed(2)} ± ${r.halfWidth.toFixed(2)}` : '–';
}

function rowsFor(report: DemoReport): string[][] {
  const shots = [...new Set(report.evaluation.map((r) => r.nShots))].sort((a, b) => a - b);
  const models: DemoModel[] = ['untrained', 'gen0', 'gen1'];
  return models.map((m) => {
    const train = report.training.find((t) => (m === 'gen0' ? t.generation === 0 : m === 'gen1' ? t.generation === 1 : false));
    return [
      MODEL_LABEL[m],
      ...shots.map((k) => fmtAcc(report.evaluation.find((r) => r.model === m && r.nShots === k))),
      train ? `${train.seconds.toFixed(0)} s` : '–',
      train ? `${train.imagesPerSecond.toFixed(0)}` : '–',
    ];
  });
}

function header(report: DemoReport): string[] {
  const shots = [...new Set(report.evaluation.map((r) => r.nShots))].sort((a, b) => a - b);
  const ways = report.evaluation[0]?.nWays ?? 5;
  return ['model', ...shots.map((k) => `${ways}-way ${k}-shot (%)`), 'training time', 'train img/s'];
}

/** A fixed-width table for the terminal. */
export function renderTable(report: DemoReport): string {
  const rows = [header(report), ...rowsFor(report)];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ');
  const episodes = report.evaluation[0]?.episodes ?? 0;
  return [
    line(rows[0]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
    '',
    `accuracy: mean ± 95% confidence half-width over ${episodes} episodes on the unseen test classes (same episodes for every model); backend: ${report.backend}`,
    ...report.findings,
  ].join('\n');
}

/** The same table and findings as Markdown, with the settings that produced them. */
export function renderMarkdown(report: DemoReport): string {
  const rows = [header(report), ...rowsFor(report)];
  const md = (r: string[]) => `| ${r.join(' | ')} |`;
  const episodes = report.evaluation[0]?.episodes ?? 0;
  return [
    `# skd demo report`,
    '',
    `${report.createdAt} · skd ${report.version} · backend ${report.backend}${report.quick ? ' · --quick' : ''} · total ${report.totalSeconds.toFixed(0)} s`,
    '',
    md(rows[0]),
    md(rows[0].map(() => '---')),
    ...rows.slice(1).map(md),
    '',
    `Accuracy is the mean over ${episodes} episodes on the toy dataset's unseen test classes, ± the 95% confidence half-width (t quantile); every model sees the same episodes and support augmentations.`,
    '',
    '## Findings',
    '',
    ...report.findings.map((f) => `- ${f}`),
    '',
    '## Export check (TensorFlow.js vs ONNX Runtime)',
    '',
    ...report.exportCheck.map((e) => `- ${e.model}: max abs diff ${e.maxAbsDiff.toExponential(2)}, max rel diff ${e.maxRelDiff.toExponential(2)}`),
    '',
    '## Settings',
    '',
    '```json',
    JSON.stringify(report.config, null, 2),
    '```',
    '',
    '![training curves](curves.svg)',
    '',
  ].join('\n');
}

/** Plain statements comparing the rows, whichever way they come out. */
export function findingsFor(evaluation: EvalRow[]): string[] {
  const out: string[] = [];
  const shots = [...new Set(evaluation.map((r) => r.nShots))].sort((a, b) => a - b);
  for (const k of shots) {
    const get = (m: DemoModel) => evaluation.find((r) => r.model === m && r.nShots === k);
    const [u, g0, g1] = [get('untrained'), get('gen0'), get('gen1')];
    if (u && g0) out.push(`${k}-shot: Gen-0 is ${(g0.mean - u.mean).toFixed(2)} points ${g0.mean >= u.mean ? 'above' : 'below'} the untrained network.`);
    if (g0 && g1) {
      const diff = g1.mean - g0.mean;
      const overlap = Math.abs(diff) <= g0.halfWidth + g1.halfWidth;
      out.push(`${k}-shot: Gen-1 is ${Math.abs(diff).toFixed(2)} points ${diff >= 0 ? 'above' : 'below'} Gen-0${overlap ? ' (within the confidence intervals: no clear difference at this scale)' : ''}.`);
    }
  }
  return out;
}

/** What `skd inspect model.pth` shows: the file's format, the inferred network, its tensors and training options. */
import { readPthCheckpoint } from './checkpoint.js';

export interface PthInfo {
  file: string;
  format: 'zip' | 'legacy';
  dtype: string;
  arch: string;
  widths: number[];
  numClasses: number;
  featureDim: number;
  parameters: number;
  tensors: { name: string; shape: number[] }[];
  epoch?: number;
  dataset?: string;
  /** The checkpoint's argparse options (paths as base names). */
  opt?: Record<string, unknown>;
  notes: string[];
}

export function describePth(file: string): PthInfo {
  const p = readPthCheckpoint(file);
  const tensors = [...p.weights].map(([name, t]) => ({ name, shape: t.shape }));
  return {
    file, format: p.format, dtype: p.dtype, arch: p.spec.arch, widths: p.spec.widths, numClasses: p.spec.numClasses,
    featureDim: p.spec.featureDim, parameters: [...p.weights.values()].reduce((a, t) => a + t.data.length, 0), tensors,
    epoch: p.epoch, dataset: typeof p.config.dataset === 'string' ? p.config.dataset : undefined,
    opt: p.config.pytorchOpt as Record<string, unknown> | undefined, notes: p.notes,
  };
}

export function formatPthInfo(info: PthInfo): string {
  const lines = [
    `${info.file}: PyTorch checkpoint (${info.format} format), ${info.dtype}`,
    `  network:    ${info.arch}, widths ${info.widths.join('-')}, ${info.numClasses} classes, ${info.featureDim}-d features`,
    `  tensors:    ${info.tensors.length} (${info.parameters.toLocaleString('en-US')} numbers)`,
  ];
  if (info.epoch !== undefined) lines.push(`  epoch:      ${info.epoch}`);
  lines.push(`  dataset:    ${info.dataset ?? 'not recorded (pass --dataset to export or eval)'}`);
  if (info.opt) lines.push(`  options:    ${Object.entries(info.opt).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`);
  for (const n of info.notes) lines.push(`  note:       ${n}`);
  return lines.join('\n');
}

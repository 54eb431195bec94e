/**
 * A checkpoint of the reference (SKD) or RFS training scripts: `torch.save({'opt': argparse.Namespace, 'model':
 * state_dict, ...})`, or a bare state_dict. Gives the network description, the weights in PyTorch layout and a
 * training configuration in skd's terms (dataset, image size), for export, evaluation and Gen-1 teachers.
 */
import { basename } from 'node:path';
import { datasetImageSize, isDatasetName } from '../data/datasets.js';
import { UserError } from '../data/errors.js';
import { numberOf, PyBytes, PyTuple, type PyValue } from '../data/py-values.js';
import { inferModelFromStateDict, UnsupportedArchitecture } from '../models/from-state-dict.js';
import type { ModelSpec, NamedWeights } from '../models/spec.js';
import { asTensor, readTorchFile } from './pth.js';

export interface PthCheckpoint {
  file: string;
  format: 'zip' | 'legacy';
  spec: ModelSpec;
  weights: NamedWeights;
  /** skd's view of the training options: dataset, imageSize, model, widths, numClasses, plus the file's own `opt`. */
  config: Record<string, unknown>;
  /** The `epoch` entry, when the file has one. */
  epoch?: number;
  /** Element type of the floating-point weights as stored (float32, float16, ...). */
  dtype: string;
  notes: string[];
}

/** Whether a path names a PyTorch checkpoint (by extension: .pth, .pt, .tar as RFS names them). */
export function isPthPath(path: string): boolean {
  return /\.(pth|pt|pth\.tar)$/i.test(path);
}

/** Plain JSON of an option value (paths reduced to their base names, so no local path leaks into metadata). */
function plain(key: string, v: PyValue): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return /(_path|_root|_folder|_dir|path_t)$/.test(key) && v.includes('/') ? basename(v) : v;
  if (v instanceof PyBytes) return v.text;
  if (Array.isArray(v)) return v.map((x) => plain(key, x));
  if (v instanceof PyTuple) return v.items.map((x) => plain(key, x));
  return undefined;
}

export interface PthHints {
  /** Dataset to assume when the checkpoint's `opt` names none (sets the image size). */
  dataset?: string;
  /** Image size when no dataset is known (default 32). */
  imageSize?: number;
}

/** Reads and interprets a .pth checkpoint; every problem is a UserError naming the file. */
export function readPthCheckpoint(file: string, hints: PthHints = {}): PthCheckpoint {
  const torch = readTorchFile(file);
  const root = torch.root;
  if (!(root instanceof Map)) throw new UserError(`${file}: torch.save stored a ${Array.isArray(root) ? 'list' : typeof root}, expected a dict with a 'model' state_dict`);
  let stateDict: Map<unknown, PyValue> | undefined;
  for (const key of ['model', 'state_dict', 'model_state_dict']) {
    const v = root.get(key);
    if (v instanceof Map) { stateDict = v; break; }
  }
  if (!stateDict && [...root.values()].length > 0 && [...root.values()].every((v) => asTensor(v))) stateDict = root;
  if (!stateDict) throw new UserError(`${file}: no state_dict in the checkpoint (expected a 'model' entry; it has ${[...root.keys()].map(String).join(', ') || 'nothing'})`);

  const raw: NamedWeights = new Map();
  const dtypes = new Set<string>();
  for (const [name, v] of stateDict) {
    const t = asTensor(v);
    if (!t) throw new UserError(`${file}: state_dict entry ${String(name)} is not a tensor`);
    if (!String(name).endsWith('num_batches_tracked')) dtypes.add(t.dtype);
    raw.set(String(name), { data: t.data, shape: t.shape });
  }
  const opt: Record<string, unknown> = {};
  const optValue = root.get('opt');
  if (optValue instanceof Map) for (const [k, v] of optValue) { const p = plain(String(k), v); if (p !== undefined) opt[String(k)] = p; }

  const dataset = typeof opt.dataset === 'string' && isDatasetName(opt.dataset) ? opt.dataset : hints.dataset;
  const imageSize = dataset && isDatasetName(dataset) ? datasetImageSize(dataset) : hints.imageSize ?? 32;
  let inferred;
  try {
    inferred = inferModelFromStateDict(raw, imageSize);
  } catch (err) {
    if (err instanceof UnsupportedArchitecture) throw new UserError(`${file}: ${err.message}`);
    throw err;
  }
  const { spec } = inferred;
  const epoch = root.has('epoch') ? numberOf(root.get('epoch')!) : undefined;
  const config: Record<string, unknown> = {
    ...(dataset ? { dataset } : {}),
    imageSize, model: spec.arch, widths: [...spec.widths], numClasses: spec.numClasses,
    source: `pytorch checkpoint ${basename(file)}`,
    ...(Object.keys(opt).length > 0 ? { pytorchOpt: opt } : {}),
  };
  return {
    file, format: torch.format, spec, weights: inferred.weights, config,
    epoch: epoch !== undefined && Number.isInteger(epoch) ? epoch : undefined,
    dtype: [...dtypes].join('/') || 'float32', notes: inferred.notes,
  };
}

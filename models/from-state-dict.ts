/**
 * The architecture of a PyTorch state_dict of the reference (SKD) or RFS code, read from its parameter names and
 * shapes: ResNet-12 (`resnet12`, `resnet12_ssl`: widths from each block's first convolution, classes from the
 * classifier, rotation head when present) and the four-layer ConvNet. Other backbones of those codebases
 * (WRN-28-10, ResNet-18/24, ...) are recognised by name and refused with a message saying so.
 */
import { initWeights } from './init.js';
import { conv4Spec, resnet12Spec, specParameters, type ModelSpec, type NamedWeights } from './spec.js';

export interface InferredModel {
  spec: ModelSpec;
  /** The weights under the spec's names (DataParallel prefixes stripped, counters dropped). */
  weights: NamedWeights;
  /** What the caller should tell the user (a missing rotation head, ignored tensors). */
  notes: string[];
}

/** Thrown (as a plain Error with a user-facing message) when the state_dict is not an architecture skd has. */
export class UnsupportedArchitecture extends Error {}

/** Names as the reference's nn.Module writes them, without DataParallel's `module.` and nn.Sequential's `.0` of one-block layers. */
export function normalizeStateDictNames(weights: NamedWeights): NamedWeights {
  const names = [...weights.keys()];
  const parallel = names.length > 0 && names.every((n) => n.startsWith('module.'));
  const out: NamedWeights = new Map();
  for (const [name, t] of weights) {
    let n = parallel ? name.slice('module.'.length) : name;
    // RFS's _make_layer wraps a single block in nn.Sequential: layer1.0.conv1.weight -> layer1.conv1.weight
    n = n.replace(/^(layer[1-4])\.0\.(conv[123]|bn[123]|downsample)\./, '$1.$2.');
    if (n.endsWith('num_batches_tracked')) continue;
    out.set(n, t);
  }
  return out;
}

function recogniseOther(names: string[]): string | undefined {
  const has = (re: RegExp): boolean => names.some((n) => re.test(n));
  if (has(/^block[1-3]\.layer\.\d+\./)) return 'a Wide ResNet (WRN-28-10)';
  if (has(/^layer[1-4]\.1\.conv1\./)) return 'a ResNet with several blocks per stage (ResNet-18/24)';
  if (has(/^layer[1-4]\.\d+\.conv1\./) || has(/^layer[1-4]\.\d+\.bn3\./)) return 'a ResNet whose blocks skd does not have';
  if (has(/^conv1\.weight$/) && has(/^layer1\./)) return 'a torchvision-style ResNet';
  return undefined;
}

const SUPPORTED = 'skd reads ResNet-12 (resnet12, resnet12_ssl) and the 4-layer ConvNet; WRN-28-10, ResNet-18/24 and other backbones are not supported';

/** Infers the model; `imageSize` comes from the training options (the state_dict does not say). */
export function inferModelFromStateDict(raw: NamedWeights, imageSize: number, seed = 0): InferredModel {
  const weights = normalizeStateDictNames(raw);
  const names = [...weights.keys()];
  const notes: string[] = [];
  const shapeOf = (n: string): number[] | undefined => weights.get(n)?.shape;
  const classifier = shapeOf('classifier.weight');
  let spec: ModelSpec;
  if (shapeOf('layer1.conv1.weight') && shapeOf('layer4.conv3.weight')) {
    const widths = [1, 2, 3, 4].map((b) => shapeOf(`layer${b}.conv1.weight`)?.[0] ?? 0);
    if (widths.some((w) => !w)) throw new UnsupportedArchitecture(`a ResNet-12 state_dict needs layer1..layer4.conv1.weight; ${SUPPORTED}`);
    if (!classifier) throw new UnsupportedArchitecture('the state_dict has no classifier.weight: the class count is unknown');
    spec = resnet12Spec({ widths, numClasses: classifier[0], imageSize });
  } else if (shapeOf('layer1.0.weight')?.length === 4 && shapeOf('layer4.0.weight')) {
    if (!classifier) throw new UnsupportedArchitecture('the state_dict has no classifier.weight: the class count is unknown');
    spec = conv4Spec({ numClasses: classifier[0], imageSize, width: shapeOf('layer1.0.weight')![0] });
  } else {
    const other = recogniseOther(names);
    throw new UnsupportedArchitecture(`${other ? `the state_dict is ${other}` : `the state_dict's names (${names.slice(0, 3).join(', ')}, ...) are not a known backbone`}; ${SUPPORTED}`);
  }
  if (!weights.has('rot_classifier.weight')) {
    // RFS checkpoints have no rotation head; Gen-1's loss does not use it, so a seeded fresh one stands in.
    const fresh = initWeights(spec, seed);
    for (const n of ['rot_classifier.weight', 'rot_classifier.bias']) weights.set(n, fresh.get(n)!);
    notes.push('the checkpoint has no rotation head (rot_classifier): a freshly initialised one stands in, so its rot_logits mean nothing');
  }
  const known = new Set<string>();
  for (const p of specParameters(spec)) {
    known.add(p.name);
    const w = weights.get(p.name);
    if (!w) throw new UnsupportedArchitecture(`the state_dict lacks ${p.name}, which ${spec.arch} with widths ${spec.widths.join('-')} needs; ${SUPPORTED}`);
    if (w.shape.join(',') !== p.shape.join(',')) throw new UnsupportedArchitecture(`${p.name} has shape [${w.shape.join(', ')}], ${spec.arch} with widths ${spec.widths.join('-')} needs [${p.shape.join(', ')}]; ${SUPPORTED}`);
  }
  const extra = names.filter((n) => !known.has(n));
  if (extra.length > 0) notes.push(`ignored ${extra.length} tensor(s) that ${spec.arch} does not use: ${extra.slice(0, 4).join(', ')}${extra.length > 4 ? ', ...' : ''}`);
  const kept: NamedWeights = new Map([...weights].filter(([n]) => known.has(n)));
  return { spec, weights: kept, notes };
}

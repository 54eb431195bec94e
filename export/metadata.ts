/**
 * The metadata_props that make an exported file self-describing: evaluation, serving and the browser
 * read preprocessing and model facts from here and need nothing else.
 *
 * | key | value |
 * |---|---|
 * | skd.layout | 'nchw' (default) or 'nhwc': layout of the 'images' input |
 * | skd.image_size | input height = width in pixels |
 * | skd.channel_order | 'rgb' |
 * | skd.value_range | '0-1' when normalisation is in the graph (feed pixels / 255); 'normalized' otherwise (feed (pixels / 255 - mean) / std) |
 * | skd.mean, skd.std | JSON arrays of 3 numbers, on the 0-1 scale |
 * | skd.normalization_in_graph | 'true' or 'false' |
 * | skd.feature_dim | width of the 'features' output |
 * | skd.arch, skd.widths, skd.num_classes | architecture, JSON array of block widths, classifier classes |
 * | skd.dataset | dataset the weights were trained on ('' if unknown) |
 * | skd.spec_version | ModelSpec version |
 * | skd.version | version of skd that wrote the file |
 * | skd.training_config | JSON object of the training configuration ('{}' if unknown) |
 * | skd.outputs | JSON array of the graph's output names |
 * | skd.input | name of the graph input ('images') |
 * | skd.epoch | training epoch of the checkpoint, when known |
 */
import type { Normalization } from '../data/types.js';
import type { ModelSpec } from '../models/spec.js';
import type { InputLayout, OutputName } from './graph.js';
import { packageVersion } from './version.js';

export interface MetadataInput {
  spec: ModelSpec;
  outputs: OutputName[];
  layout: InputLayout;
  normalization: Normalization;
  normalizationInGraph: boolean;
  dataset?: string;
  trainingConfig?: Record<string, unknown>;
  epoch?: number;
  /** Further entries; keys should start with 'skd.' and must not replace the ones above. */
  extra?: Record<string, string>;
}

export function buildMetadata(m: MetadataInput): Record<string, string> {
  const props: Record<string, string> = {
    'skd.layout': m.layout,
    'skd.image_size': String(m.spec.imageSize),
    'skd.channel_order': 'rgb',
    'skd.value_range': m.normalizationInGraph ? '0-1' : 'normalized',
    'skd.mean': JSON.stringify(m.normalization.mean),
    'skd.std': JSON.stringify(m.normalization.std),
    'skd.normalization_in_graph': String(m.normalizationInGraph),
    'skd.feature_dim': String(m.spec.featureDim),
    'skd.arch': m.spec.arch,
    'skd.widths': JSON.stringify(m.spec.widths),
    'skd.num_classes': String(m.spec.numClasses),
    'skd.dataset': m.dataset ?? '',
    'skd.spec_version': String(m.spec.specVersion),
    'skd.version': packageVersion(),
    'skd.training_config': JSON.stringify(m.trainingConfig ?? {}),
    'skd.outputs': JSON.stringify(m.outputs),
    'skd.input': m.spec.input,
  };
  if (m.epoch !== undefined) props['skd.epoch'] = String(m.epoch);
  for (const [key, value] of Object.entries(m.extra ?? {})) {
    if (key in props) throw new Error(`metadata key ${key} is written by the exporter and cannot be replaced`);
    props[key] = value;
  }
  return props;
}

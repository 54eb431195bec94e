/**
 * The metadata_props that make an exported file self-describing: evaluation, serving and the browser
 * read preprocessing and model facts from here and need nothing else. The keys and the preprocessing entries
 * belong to models/preprocessing.ts, which also reads them back.
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
 * | skd.training_config | JSON object of the training configuration ('{}' if unknown); local paths by base name |
 * | skd.outputs | JSON array of the graph's output names |
 * | skd.input | name of the graph input ('images') |
 * | skd.epoch | training epoch of the checkpoint, when known |
 */
import type { Normalization } from '../data/types.js';
import { SKD_KEYS, preprocessingMetadata } from '../models/preprocessing.js';
import type { ModelSpec } from '../models/spec.js';
import type { InputLayout, OutputName } from './graph.js';
import { portableTrainingConfig } from '../proto/portable-config.js';
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
    ...preprocessingMetadata({
      layout: m.layout, size: m.spec.imageSize, mean: m.normalization.mean, std: m.normalization.std,
      normalizationInGraph: m.normalizationInGraph, inputName: m.spec.input,
    }),
    [SKD_KEYS.featureDim]: String(m.spec.featureDim),
    [SKD_KEYS.arch]: m.spec.arch,
    [SKD_KEYS.widths]: JSON.stringify(m.spec.widths),
    [SKD_KEYS.numClasses]: String(m.spec.numClasses),
    [SKD_KEYS.dataset]: m.dataset ?? '',
    [SKD_KEYS.specVersion]: String(m.spec.specVersion),
    [SKD_KEYS.version]: packageVersion(),
    [SKD_KEYS.trainingConfig]: JSON.stringify(portableTrainingConfig(m.trainingConfig ?? {})),
    [SKD_KEYS.outputs]: JSON.stringify(m.outputs),
  };
  if (m.epoch !== undefined) props[SKD_KEYS.epoch] = String(m.epoch);
  for (const [key, value] of Object.entries(m.extra ?? {})) {
    if (key in props) throw new Error(`metadata key ${key} is written by the exporter and cannot be replaced`);
    props[key] = value;
  }
  return props;
}

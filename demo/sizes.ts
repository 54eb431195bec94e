/**
 * How big the demo is: `default` and `quick` (their measured times are in bin/commands/demo.ts and README);
 * `tiny` exists for the end-to-end test. All hyperparameters of a size are here.
 */
import { FEW_SHOT_PROTOCOL } from '../data/protocol.js';
import type { ModelName } from '../train/config.js';

export interface DemoSize {
  name: string;
  model: ModelName;
  widths: number[];
  imagesPerClass: number;
  batchSize: number;
  gen0Epochs: number;
  gen0Decay: number[];
  gen1Epochs: number;
  gen1Decay: number[];
  /** Cap on optimiser steps per epoch (undefined: the whole epoch). */
  maxStepsPerEpoch?: number;
  valEvery: number;
  valEpisodes: number;
  episodes: number;
  shots: number[];
  augSupport: number;
}

export type DemoSizeName = 'default' | 'quick' | 'tiny';

export const DEMO_SIZES: Record<DemoSizeName, DemoSize> = {
  default: {
    name: 'default', model: 'resnet12', widths: [8, 16, 32, 64], imagesPerClass: 100, batchSize: 64,
    gen0Epochs: 5, gen0Decay: [4], gen1Epochs: 2, gen1Decay: [], valEvery: 1, valEpisodes: 100,
    episodes: FEW_SHOT_PROTOCOL.nTestRuns, shots: [1, 5], augSupport: FEW_SHOT_PROTOCOL.nAugSupportSamples,
  },
  quick: {
    name: 'quick', model: 'resnet12', widths: [8, 16, 32, 64], imagesPerClass: 60, batchSize: 64,
    gen0Epochs: 3, gen0Decay: [], gen1Epochs: 1, gen1Decay: [], maxStepsPerEpoch: 30, valEvery: 3, valEpisodes: 30,
    episodes: 200, shots: [1, 5], augSupport: FEW_SHOT_PROTOCOL.nAugSupportSamples,
  },
  tiny: {
    name: 'tiny', model: 'conv4', widths: [8], imagesPerClass: 20, batchSize: 32,
    gen0Epochs: 1, gen0Decay: [], gen1Epochs: 1, gen1Decay: [], maxStepsPerEpoch: 4, valEvery: 0, valEpisodes: 10,
    episodes: 10, shots: [1], augSupport: 1,
  },
};

/** The networks of the train-step benchmark (bench/train-step.bench.ts and its worker), by the names it takes. */
import { conv4Spec, resnet12Spec, type ModelSpec } from '../models/spec.js';

/** Unrotated images per Gen-0 step (256 rows with the 4 rotations). */
export const BATCH = 64;
export const CLASSES = 64;

export const BENCH_MODELS: Record<string, () => ModelSpec> = {
  conv4: () => conv4Spec({ numClasses: CLASSES }),
  'resnet12-16-40-80-160': () => resnet12Spec({ widths: [16, 40, 80, 160], numClasses: CLASSES }),
  resnet12: () => resnet12Spec({ numClasses: CLASSES }),
  'resnet12-84px': () => resnet12Spec({ numClasses: CLASSES, imageSize: 84 }),
};

/** Records shared by the training loop, the checkpoint format and callers such as the demo. Plain data. */

/** Few-shot accuracy on the val split (the evaluator with the prototype head, docs/method.md), measured after an epoch. */
export interface ValidationRecord {
  ways: number;
  shots: number;
  queries: number;
  episodes: number;
  /** Augmented copies of each support image asked for (0 and 1 both mean one). */
  augSupportSamples?: number;
  /** Mean per-episode accuracy in percent. */
  accuracy: number;
  /** 95% half-width in percent (t quantile, n - 1); NaN for a single episode. */
  ci95: number;
}

/** One epoch's summary: what the progress line prints and log.jsonl stores. */
export interface EpochRecord {
  /** 0 for Gen-0, 1 for Gen-1, 2 for a student of Gen-1, ... */
  generation: number;
  /** 1-indexed epoch within this generation. */
  epoch: number;
  lr: number;
  steps: number;
  /** Mean total loss over the epoch's steps. */
  loss: number;
  /** Mean loss parts: { ce, ss } for Gen-0, { kd, l2 } for Gen-1. */
  parts: Record<string, number>;
  /** Top-1 class accuracy in percent on the unrotated rows of each batch. */
  acc: number;
  /** Gen-0 only: top-1 rotation accuracy in percent over all four rotated copies. */
  rotAcc?: number;
  /** Training images per second (unrotated images, so it compares across generations). */
  imagesPerSecond: number;
  /** Wall seconds of the epoch including validation. */
  seconds: number;
  val?: ValidationRecord;
}

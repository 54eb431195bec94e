/** The in-memory forms shared by every reader, the augmentation pipeline and the evaluator. */
import type { ImageStore } from './pixels.js';

/** One split of a dataset: uint8 pixels in NHWC order, labels remapped to 0..k-1 in first-appearance order. */
export interface ImageSet {
  /** Dataset name, for example "CIFAR-FS", "toy" or "folder". */
  name: string;
  /** Split name, for example "train", "val", "test". */
  split: string;
  /** N images of H*W*C bytes, row-major NHWC, RGB, in chunks of whole images (one chunk unless the set is very large). */
  images: ImageStore;
  count: number;
  height: number;
  width: number;
  channels: number;
  /** Remapped label of each image, 0..classNames.length-1. */
  labels: Int32Array;
  /** Name of each remapped class (a synset or folder name, or the original id as text). */
  classNames: string[];
  /** The id each remapped class had in the source file (for example the sparse CIFAR-100 id). */
  originalIds: (number | string)[];
  /** Image folders: the smallest and largest [height, width] of the files before they were resized to height x width. */
  storedSize?: { min: [number, number]; max: [number, number] };
}

/** A float batch at a module boundary: NHWC unless a shape says otherwise. */
export interface FloatTensor {
  data: Float32Array;
  shape: number[];
}

/** Per-channel normalisation applied after scaling pixels to [0, 1]. */
export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * One entry point for every dataset: the published pickles (CIFAR-FS, FC100, miniImageNet), tieredImageNet's
 * npz + pkl pairs, image folders and the generated toy set, all returned as an ImageSet (uint8 NHWC pixels,
 * labels remapped to 0..k-1 in first-appearance order, original ids kept).
 */
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { paddingForSize } from './augment.js';
import { fsReason, UserError } from './errors.js';
import { loadImageFolder } from './folder.js';
import { readNpzRows, type NpyHeader } from './npz.js';
import { parsePickle, parsePickleFile } from './pickle.js';
import { FileRange, NumpyArray, PyBytes, numberOf, toIntList, type PyDict, type PyValue } from './py-values.js';
import { DEFAULT_CHUNK_BYTES, ImageStore } from './pixels.js';
import { readAt } from './zip.js';
import { generateToy } from './toy.js';
import type { ImageSet, Normalization } from './types.js';

export const DATASET_NAMES = ['CIFAR-FS', 'FC100', 'miniImageNet', 'tieredImageNet', 'folder', 'toy'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export interface LoadOptions {
  dataset: DatasetName;
  /** Folder holding the dataset (or its parent, for the published layouts); not used by `toy`. */
  dataRoot?: string;
  split: string;
  /** Expected (pickles) or target (folders, toy) image side; defaults to datasetImageSize(dataset). */
  imageSize?: number;
  toy?: { seed?: number; imagesPerClass?: number };
  /** Most bytes of pixels in one buffer, and the size above which a pickle is parsed through a window (tests force the chunked path with a small value). */
  chunkBytes?: number;
}

/** Chunked reading: the pixel chunk size (ImageStore) and the pickle size above which the file is read through a window. */
export interface ChunkOptions { chunkBytes?: number }

export const CIFAR_NORMALIZATION: Normalization = { mean: [0.5071, 0.4867, 0.4408], std: [0.2675, 0.2565, 0.2761] };
export const IMAGENET_NORMALIZATION: Normalization = {
  mean: [120.39586422 / 255, 115.59361427 / 255, 104.54012653 / 255],
  std: [70.68188272 / 255, 68.27635443 / 255, 72.54505529 / 255],
};

export function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

export function datasetNormalization(name: DatasetName): Normalization {
  return name === 'CIFAR-FS' || name === 'FC100' || name === 'toy' ? CIFAR_NORMALIZATION : IMAGENET_NORMALIZATION;
}

export function datasetImageSize(name: DatasetName): number {
  return name === 'CIFAR-FS' || name === 'FC100' || name === 'toy' ? 32 : 84;
}

/** RandomCrop padding of the reference: 4 for 32x32 images, 8 for 84x84. */
export function datasetPadding(name: DatasetName): number {
  return paddingForSize(datasetImageSize(name));
}

/** Padding for an arbitrary image size (folders at a custom size); one rule with the server and the page. */
export { paddingForSize };

const MINI_FILES: Record<string, string> = {
  train: 'miniImageNet_category_split_train_phase_train.pickle',
  train_phase_train: 'miniImageNet_category_split_train_phase_train.pickle',
  train_phase_val: 'miniImageNet_category_split_train_phase_val.pickle',
  train_phase_test: 'miniImageNet_category_split_train_phase_test.pickle',
  val: 'miniImageNet_category_split_val.pickle',
  test: 'miniImageNet_category_split_test.pickle',
};

/** Finds `file` in `root` or `root/<dataset>`; throws a UserError naming both places when absent. */
function locate(root: string | undefined, dataset: string, file: string, splitNote: string): string {
  if (!root) throw new UserError(`dataset ${dataset} needs --data-root (the folder holding ${file})`);
  const candidates = [join(root, file), join(root, dataset, file)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new UserError(`${candidates[0]} not found (nor ${candidates[1]}); expected the ${dataset} file ${file}${splitNote}`);
  return found;
}

function fileSize(file: string): number {
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new UserError(`${file} is not a file`);
    return st.size;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${file}: cannot read: ${fsReason(err)}`);
  }
}

/** A parsed pickle dict; in a windowed parse its large arrays are FileRanges of `file`. */
interface PickleDictFile { file: string; dict: PyDict; windowed: boolean; chunkBytes: number }

/**
 * Reads a pickle whose top level is a dict: whole when it fits in a chunk, else through a window, leaving
 * the pixels in the file until pixelStore reads them into their chunks.
 */
function openPickleDict(file: string, opts: ChunkOptions = {}): PickleDictFile {
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const size = fileSize(file);
  const head = Buffer.alloc(Math.min(2, size));
  const fd = openSync(file, 'r');
  try { readAt(fd, 0, head.length, file, head); } finally { closeSync(fd); }
  if (head.length < 2 || head[0] !== 0x80) throw new UserError(`${file} is not a pickle (expected a protocol 2+ pickle starting with byte 0x80)`);
  const windowed = size > chunkBytes;
  let value: PyValue;
  try {
    value = windowed ? parsePickleFile(file, { windowBytes: Math.min(chunkBytes, 64 * 2 ** 20) }) : parsePickle(readFileSync(file), file);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!(value instanceof Map)) throw new UserError(`${file}: the pickle holds a ${describe(value)}, expected a dict with 'data' and 'labels'`);
  return { file, dict: value, windowed, chunkBytes };
}

/** Reads a pickle whose top level is a dict (arrays left in the file are read in). */
export function readPickleDict(file: string, opts: ChunkOptions = {}): PyDict {
  const p = openPickleDict(file, opts);
  for (const v of p.dict.values()) if (v instanceof NumpyArray) materialize(v, p.file);
  return p.dict;
}

/** Reads an array that a windowed parse left in the file into memory (for small arrays such as labels). */
function materialize(v: PyValue | undefined, file: string): void {
  if (!(v instanceof NumpyArray) || !v.range) return;
  v.data = readRange(file, v.range, new Uint8Array(v.range.length));
  v.range = null;
}

function readRange(file: string, range: FileRange, into: Uint8Array, offset = 0): Uint8Array {
  const fd = openSync(file, 'r');
  try { return readAt(fd, range.offset + offset, into.length, file, into); } finally { closeSync(fd); }
}

function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof NumpyArray) return 'numpy array';
  if (v instanceof PyBytes) return 'bytes';
  return typeof v;
}

/** The images of a uint8 [N, H, W, 3] array, checked, in chunks (views of the parsed buffer, or read from the file). */
export function pixelArray(arr: PyValue | undefined, file: string, key: string, expectedSize?: number, chunkBytes: number = DEFAULT_CHUNK_BYTES): Pixels {
  if (!(arr instanceof NumpyArray) || !arr.dtype) throw new UserError(`${file}: '${key}' is missing or not a numpy array; expected uint8 images [N, H, W, 3]`);
  const shape = checkPixelHeader(arr.shape, arr.dtype.descr, arr.fortranOrder, file, key, expectedSize);
  const imageBytes = shape.height * shape.width * 3;
  let store: ImageStore;
  if (arr.range) {
    store = ImageStore.allocate(shape.count, imageBytes, chunkBytes);
    const fd = openSync(file, 'r');
    try {
      let at = arr.range.offset;
      for (const chunk of store.chunks) { readAt(fd, at, chunk.length, file, chunk); at += chunk.length; }
    } finally { closeSync(fd); }
  } else store = ImageStore.fromBytes(arr.data, imageBytes, chunkBytes);
  return { ...shape, images: store };
}

interface Pixels { images: ImageStore; count: number; height: number; width: number }

/** Checks that an array header describes uint8 images [N, H, W, 3] (of the expected size). */
export function checkPixelHeader(shape: number[], descr: string, fortran: boolean, file: string, key: string, expectedSize?: number): { count: number; height: number; width: number } {
  const shapeText = `(${shape.join(', ')})`;
  if (!/^[|<>=]?u1$/.test(descr)) throw new UserError(`${file}: '${key}' has dtype ${descr}, expected uint8 images [N, H, W, 3]`);
  if (shape.length !== 4 || shape[3] !== 3) throw new UserError(`${file}: '${key}' has shape ${shapeText}, expected uint8 images [N, H, W, 3]`);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new UserError(`${file}: '${key}' has shape ${shapeText}; dimensions must be whole numbers, 0 or more`);
  if (fortran) throw new UserError(`${file}: '${key}' is stored in Fortran order, expected a C-ordered array`);
  if (shape[0] === 0) throw new UserError(`${file}: '${key}' holds no images`);
  if (shape[1] === 0 || shape[2] === 0) throw new UserError(`${file}: '${key}' has empty images ${shapeText}`);
  if (expectedSize !== undefined && (shape[1] !== expectedSize || shape[2] !== expectedSize)) {
    throw new UserError(`${file}: '${key}' has ${shape[1]}x${shape[2]} images, expected ${expectedSize}x${expectedSize}`);
  }
  return { count: shape[0], height: shape[1], width: shape[2] };
}

/** Remaps sparse ids to 0..k-1 in order of first appearance. */
export function remapLabels(ids: number[]): { labels: Int32Array; originalIds: number[] } {
  const map = new Map<number, number>();
  const labels = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    let l = map.get(ids[i]);
    if (l === undefined) { l = map.size; map.set(ids[i], l); }
    labels[i] = l;
  }
  return { labels, originalIds: [...map.keys()] };
}

/**
 * Builds an ImageSet from a pickle dict with 'data' and 'labels' (and optionally 'catname2label'), the
 * layout of the CIFAR-FS, FC100 and miniImageNet files.
 */
export function imageSetFromPickle(file: string, name: string, split: string, expectedSize?: number, opts: ChunkOptions = {}): ImageSet {
  const p = openPickleDict(file, opts);
  const dict = p.dict;
  const px = pixelArray(dict.get('data'), file, 'data', expectedSize, p.chunkBytes);
  const labelsKey = dict.has('labels') ? 'labels' : 'label';
  materialize(dict.get(labelsKey), file);
  const ids = toIntList(dict.get(labelsKey), file, `'labels'`);
  let catnames: Map<number, string> | undefined;
  const c2l = dict.get('catname2label');
  if (c2l instanceof Map) catnames = new Map([...c2l].map(([k, v]) => [numberOf(v), String(k)]));
  return assemble(file, name, split, px, ids, catnames);
}

function assemble(
  file: string, name: string, split: string,
  px: Pixels,
  ids: number[], catnames?: Map<number, string>,
): ImageSet {
  if (ids.length !== px.count) throw new UserError(`${file}: ${ids.length} labels for ${px.count} images; expected one label per image`);
  const { labels, originalIds } = remapLabels(ids);
  return {
    name, split,
    images: px.images,
    count: px.count, height: px.height, width: px.width, channels: 3,
    labels,
    classNames: originalIds.map((id) => catnames?.get(id) ?? String(id)),
    originalIds,
  };
}

/** tieredImageNet: `<split>_images.npz` (key 'images') with `<split>_labels.pkl` (key 'labels'). */
export function imageSetFromTiered(imagesFile: string, labelsFile: string, split: string, expectedSize?: number, opts: ChunkOptions = {}): ImageSet {
  const labelsDict = readPickleDict(labelsFile);
  const ids = toIntList(labelsDict.get('labels'), labelsFile, `'labels'`);
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const check = (h: NpyHeader): void => { checkPixelHeader(h.shape, h.dtype.descr, h.fortranOrder, imagesFile, 'images', expectedSize); };
  const npz = readNpzRows(imagesFile, 'images', { check, rowsPerChunk: (rowBytes) => ImageStore.imagesPerChunkFor(rowBytes, chunkBytes) });
  const shape = checkPixelHeader(npz.header.shape, npz.header.dtype.descr, npz.header.fortranOrder, imagesFile, 'images', expectedSize);
  const px: Pixels = { ...shape, images: new ImageStore(npz.chunks, npz.rowBytes) };
  if (ids.length !== px.count) throw new UserError(`${labelsFile}: ${ids.length} labels for the ${px.count} images of ${basename(imagesFile)}; expected one label per image`);
  return assemble(imagesFile, 'tieredImageNet', split, px, ids);
}

export async function loadDataset(opts: LoadOptions): Promise<ImageSet> {
  const { dataset, dataRoot, split } = opts;
  if (!isDatasetName(dataset)) throw new UserError(`unknown dataset "${dataset}" (expected one of ${DATASET_NAMES.join(', ')})`);
  const size = opts.imageSize ?? datasetImageSize(dataset);
  switch (dataset) {
    case 'toy':
      return generateToy({ split, seed: opts.toy?.seed, imagesPerClass: opts.toy?.imagesPerClass, imageSize: size });
    case 'folder':
      if (!dataRoot) throw new UserError('dataset folder needs --data-root (a folder with <split>/<class>/*.jpg)');
      return loadImageFolder(dataRoot, split, size);
    case 'CIFAR-FS':
    case 'FC100': {
      const file = locate(dataRoot, dataset, `${split}.pickle`, ' (splits: train, val, test, trainval)');
      return imageSetFromPickle(file, dataset, split, opts.imageSize, opts);
    }
    case 'miniImageNet': {
      const fileName = MINI_FILES[split];
      if (!fileName) throw new UserError(`miniImageNet has no split "${split}" (expected ${Object.keys(MINI_FILES).join(', ')})`);
      return imageSetFromPickle(locate(dataRoot, dataset, fileName, ''), dataset, split, opts.imageSize, opts);
    }
    case 'tieredImageNet': {
      const imagesFile = locate(dataRoot, dataset, `${split}_images.npz`, ' (splits: train, val, test)');
      const labelsFile = locate(dataRoot, dataset, `${split}_labels.pkl`, '');
      return imageSetFromTiered(imagesFile, labelsFile, split, opts.imageSize, opts);
    }
  }
}

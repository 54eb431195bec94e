/**
 * Works out what a user pointed at (a dataset folder, a single pickle or npz, an image folder) and loads each
 * split found there. Used by `skd data inspect`.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fsReason, UserError } from './errors.js';
import { datasetImageSize, imageSetFromPickle, imageSetFromTiered, loadDataset, type DatasetName } from './datasets.js';
import { IMAGE_EXTENSIONS, loadImageFolder } from './folder.js';
import type { ImageSet } from './types.js';

export interface DiscoverOptions {
  dataset?: DatasetName;
  split?: string;
  /** Target side for image folders (default 84); pickles keep their own size. */
  imageSize?: number;
}

export interface LoadedSplit { source: string; set: ImageSet }

const DATASET_SPLITS: Record<string, string[]> = {
  'CIFAR-FS': ['train', 'val', 'test', 'trainval'],
  FC100: ['train', 'val', 'test', 'trainval'],
  miniImageNet: ['train', 'val', 'test'],
  tieredImageNet: ['train', 'val', 'test'],
  toy: ['train', 'val', 'test'],
};

function isDir(p: string): boolean {
  try { return statSync(p).isDirectory(); } catch { return false; }
}

/** A folder's entries; an unreadable folder (a symbolic-link loop, no permission) is one UserError naming it. */
function listDir(dir: string): string[] {
  try { return readdirSync(dir); } catch (err) { throw new UserError(`${dir}: cannot read: ${fsReason(err)}; expected a dataset folder`); }
}

function hasImages(dir: string): boolean {
  return listDir(dir).some((f) => IMAGE_EXTENSIONS.some((e) => f.toLowerCase().endsWith(e)));
}

/** A split folder of an image-folder dataset: holds class folders that hold images. */
function isSplitFolder(dir: string): boolean {
  return listDir(dir).some((c) => isDir(join(dir, c)) && hasImages(join(dir, c)));
}

/** Guesses the dataset of a pickle from its file name (for naming only; the contents decide the layout). */
function nameForPickle(file: string): string {
  const b = basename(file);
  if (b.startsWith('miniImageNet')) return 'miniImageNet';
  const parent = basename(dirname(file));
  return parent === 'FC100' || parent === 'CIFAR-FS' ? parent : 'pickle';
}

/** A file that holds a split's images: a pickle (not a tieredImageNet labels file) or an _images.npz. */
function isDatasetFile(f: string): boolean {
  return (/\.(pickle|pkl)$/i.test(f) && !/_labels\.pkl$/i.test(f)) || /_images\.npz$/i.test(f);
}

function splitOfFile(file: string): string {
  return basename(file).replace(/^miniImageNet_category_split_/, '').replace(/\.(pickle|pkl)$/, '');
}

function loadFile(file: string): LoadedSplit {
  const ext = extname(file).toLowerCase();
  if (ext === '.npz') {
    const labels = file.replace(/_images\.npz$/i, '_labels.pkl');
    if (labels === file || !existsSync(labels)) throw new UserError(`${file}: expected its labels beside it as ${basename(labels === file ? file.replace(/\.npz$/i, '_labels.pkl') : labels)} (tieredImageNet layout <split>_images.npz + <split>_labels.pkl)`);
    const split = basename(file).replace(/_images\.npz$/i, '');
    return { source: file, set: imageSetFromTiered(file, labels, split) };
  }
  if (ext === '.pickle' || ext === '.pkl') return { source: file, set: imageSetFromPickle(file, nameForPickle(file), splitOfFile(file)) };
  throw new UserError(`${file}: unknown file type; expected a .pickle/.pkl dataset file, an _images.npz file or a folder`);
}

/** Loads what `path` holds: one split per file or split folder. */
export async function discoverSplits(path: string, opts: DiscoverOptions = {}): Promise<LoadedSplit[]> {
  if (opts.dataset === 'toy') {
    const splits = opts.split ? [opts.split] : DATASET_SPLITS.toy;
    return Promise.all(splits.map(async (split) => ({ source: 'generated', set: await loadDataset({ dataset: 'toy', split }) })));
  }
  if (!existsSync(path)) throw new UserError(`${path} not found; expected a dataset folder, a .pickle/.pkl/.npz file or an image folder`);
  if (!isDir(path)) return [loadFile(path)];

  if (opts.dataset && opts.dataset !== 'folder') {
    const dataset = opts.dataset;
    const splits = opts.split ? [opts.split] : DATASET_SPLITS[dataset];
    const loaded: LoadedSplit[] = [];
    for (const split of splits) {
      try {
        loaded.push({ source: path, set: await loadDataset({ dataset, dataRoot: path, split }) });
      } catch (err) {
        // Without --split, splits that are absent are skipped (trainval is often missing); other errors stand.
        if (opts.split || !(err instanceof UserError) || !/ not found/.test(err.message)) throw err;
      }
    }
    if (loaded.length === 0) throw new UserError(`${path}: found none of the ${dataset} splits (${splits.join(', ')})`);
    return loaded;
  }

  const size = opts.imageSize ?? datasetImageSize('folder');
  const entries = listDir(path).sort();
  const files = entries.filter(isDatasetFile);
  if (opts.dataset !== 'folder' && files.length > 0) {
    const chosen = opts.split ? files.filter((f) => splitOfFile(f) === opts.split || f.replace(/_images\.npz$/i, '') === opts.split) : files;
    if (chosen.length === 0) throw new UserError(`${path}: no file for split "${opts.split}" (found ${files.join(', ')})`);
    return chosen.map((f) => loadFile(join(path, f)));
  }
  // Image folders: either <path>/<split>/<class>/* or <path>/<class>/* (path is itself a split).
  const splitDirs = entries.filter((e) => isDir(join(path, e)) && isSplitFolder(join(path, e)));
  if (splitDirs.length === 0 && isSplitFolder(path)) {
    return [{ source: path, set: await loadImageFolder(dirname(path), basename(path), size) }];
  }
  // A folder of dataset folders (for example datasets/ holding CIFAR-FS/ and miniImageNet/): each one's files.
  const datasetDirs = splitDirs.length === 0 && opts.dataset !== 'folder'
    ? entries.filter((e) => isDir(join(path, e)) && listDir(join(path, e)).some(isDatasetFile))
    : [];
  if (datasetDirs.length > 0) {
    const loaded: LoadedSplit[] = [];
    for (const d of datasetDirs) {
      try {
        loaded.push(...(await discoverSplits(join(path, d), opts)));
      } catch (err) {
        // With --split, dataset folders without that split are skipped.
        if (!opts.split || !(err instanceof UserError) || !/no file for split/.test(err.message)) throw err;
      }
    }
    if (loaded.length === 0) throw new UserError(`${path}: no dataset folder has a split "${opts.split}"`);
    return loaded;
  }
  const splits = opts.split ? [opts.split] : splitDirs;
  if (splits.length === 0) {
    throw new UserError(`${path}: no dataset found; expected .pickle/.npz files, <split>/<class>/*.png folders, or --dataset NAME`);
  }
  const loaded: LoadedSplit[] = [];
  for (const split of splits) loaded.push({ source: join(path, split), set: await loadImageFolder(path, split, size) });
  return loaded;
}

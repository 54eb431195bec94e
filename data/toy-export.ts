/**
 * Writes the toy dataset as image folders (`<out>/<split>/<class>/<n>.png`), so it can be browsed, shared or
 * loaded back with `--dataset folder`. Everything is written under a temporary sibling folder that is renamed
 * to `out` at the end, so an interrupted run leaves no partial dataset.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { UserError } from './errors.js';
import { generateToy } from './toy.js';

export interface MakeToyOptions {
  out: string;
  seed?: number;
  imagesPerClass?: number;
  imageSize?: number;
  splits?: string[];
  /** Called after each class folder is written. */
  onProgress?: (done: number, total: number, split: string) => void;
}

export interface MakeToyResult { out: string; splits: { split: string; classes: number; images: number }[] }

export async function writeToyFolders(opts: MakeToyOptions): Promise<MakeToyResult> {
  const out = resolve(opts.out);
  if (existsSync(out) && readdirSync(out).length > 0) throw new UserError(`${opts.out} already exists and is not empty; choose a new --out folder`);
  const parent = dirname(out);
  try {
    mkdirSync(parent, { recursive: true });
  } catch (err) {
    throw new UserError(`cannot create ${parent} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const staging = join(parent, `.${basename(out)}.partial-${process.pid}`);
  const splits = opts.splits ?? ['train', 'val', 'test'];
  const sets = splits.map((split) => generateToy({ split, seed: opts.seed, imagesPerClass: opts.imagesPerClass, imageSize: opts.imageSize }));
  const totalClasses = sets.reduce((a, s) => a + s.classNames.length, 0);
  let done = 0;
  try {
    for (const set of sets) {
      const perClass = set.count / set.classNames.length;
      const digits = String(perClass - 1).length;
      const bytes = set.height * set.width * set.channels;
      for (let k = 0; k < set.classNames.length; k++) {
        const dir = join(staging, set.split, set.classNames[k]);
        mkdirSync(dir, { recursive: true });
        const jobs: Promise<unknown>[] = [];
        for (let i = 0; i < set.count; i++) {
          if (set.labels[i] !== k) continue;
          const n = jobs.length;
          const pixels = set.images.image(i);
          jobs.push(sharp(pixels, { raw: { width: set.width, height: set.height, channels: 3 } })
            .png()
            .toFile(join(dir, `${String(n).padStart(digits, '0')}.png`)));
        }
        await Promise.all(jobs);
        opts.onProgress?.(++done, totalClasses, set.split);
      }
    }
    if (existsSync(out)) rmSync(out, { recursive: true }); // an empty folder the user made beforehand
    renameSync(staging, out);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    if (err instanceof UserError) throw err;
    throw new UserError(`writing the toy dataset to ${opts.out} failed: ${(err as Error).message}`);
  }
  return { out, splits: sets.map((s) => ({ split: s.split, classes: s.classNames.length, images: s.count })) };
}

/**
 * Image folders: `<root>/<split>/<class>/*.{jpg,jpeg,png,webp}`, one folder per class, decoded and resized
 * (cover, centre crop) to a square with sharp. Classes and files are taken in sorted order, so the labels are
 * stable across machines.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { fsReason, UserError } from './errors.js';
import type { ImageSet } from './types.js';
import { forEachConcurrent } from './concurrent.js';
import { ImageStore } from './pixels.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'];

function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

function sortedNames(dir: string): string[] {
  // Plain code-point order, not locale order, so every machine agrees.
  return readdirSync(dir).filter((n) => !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Lists `<dir>/<class>/<image>` as [class name, files] pairs; throws UserError for a missing dir or an empty class. */
export function listClassFolders(dir: string): { name: string; files: string[] }[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new UserError(`${dir} is not a directory; expected a folder with one sub-folder per class`);
    names = sortedNames(dir);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${dir}: cannot read: ${fsReason(err)}; expected a folder with one sub-folder per class`);
  }
  const classes = names.filter((n) => {
    try { return statSync(join(dir, n)).isDirectory(); } catch (err) { throw new UserError(`${join(dir, n)}: cannot read: ${fsReason(err)}; expected a class folder of images`); }
  });
  if (classes.length === 0) throw new UserError(`${dir} has no class folders; expected ${dir}/<class>/*.{jpg,png,webp}`);
  return classes.map((name) => {
    let names: string[];
    try { names = sortedNames(join(dir, name)); } catch (err) { throw new UserError(`${join(dir, name)}: cannot read: ${fsReason(err)}; expected a class folder of images`); }
    const files = names.filter(isImageFile).map((f) => join(dir, name, f));
    if (files.length === 0) throw new UserError(`class folder ${join(dir, name)} has no images (expected *.jpg, *.jpeg, *.png or *.webp)`);
    return { name, files };
  });
}

/** Decodes one image file to size x size RGB bytes (cover fit, centre crop); `stored` is its [height, width] before resizing. */
export async function decodeImageFile(file: string, size: number): Promise<{ pixels: Uint8Array; stored: [number, number] }> {
  try {
    const image = sharp(file);
    const meta = await image.metadata();
    const upright = meta.autoOrient ?? meta;
    const { data, info } = await image
      .rotate() // honour EXIF orientation
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size, size, { fit: 'cover' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== size * size * 3) throw new Error(`decoded to ${info.channels} channels`);
    return { pixels: data, stored: [upright.height ?? size, upright.width ?? size] };
  } catch (err) {
    throw new UserError(`${file}: cannot decode as an image (${(err as Error).message.split('\n')[0]}); expected a JPEG, PNG or WebP file`);
  }
}

/** Loads `<root>/<split>/<class>/*` into an ImageSet of size x size RGB images. */
export async function loadImageFolder(root: string, split: string, size: number, name = 'folder'): Promise<ImageSet> {
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new UserError(`image size must be an integer in [1, 4096], got ${size}`);
  const dir = join(root, split);
  const classes = listClassFolders(dir);
  const files: string[] = [];
  const labelList: number[] = [];
  classes.forEach((c, k) => {
    for (const f of c.files) { files.push(f); labelList.push(k); }
  });
  const imageBytes = size * size * 3;
  const images = new Uint8Array(files.length * imageBytes);
  const min: [number, number] = [Infinity, Infinity];
  const max: [number, number] = [0, 0];
  // A few decodes in flight at once; sharp runs them on its own thread pool.
  await forEachConcurrent(files.length, 8, async (i) => {
    const { pixels, stored } = await decodeImageFile(files[i]!, size);
    images.set(pixels, i * imageBytes);
    for (const d of [0, 1] as const) { min[d] = Math.min(min[d], stored[d]); max[d] = Math.max(max[d], stored[d]); }
  });
  return {
    name,
    split,
    images: ImageStore.fromBytes(images, imageBytes),
    count: files.length,
    height: size,
    width: size,
    channels: 3,
    labels: Int32Array.from(labelList),
    classNames: classes.map((c) => c.name),
    originalIds: classes.map((c) => c.name),
    storedSize: { min, max },
  };
}

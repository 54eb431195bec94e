/**
 * Request images -> uint8 RGB pixels at the model's input size.
 *
 * An image in a request is either
 *   - a string: base64 of a PNG, JPEG or WebP file (a `data:image/...;base64,` prefix is allowed), or
 *   - an object `{ "shape": [H, W, 3], "pixels": [...] }` of raw RGB values 0-255 in row-major order;
 *     `shape` may also be `[N, H, W, 3]`, which stands for N images.
 * Every image is resized to size x size (cover: scale to fill, centre-crop the overflow), like the
 * preprocessing of the datasets the models were trained on. Decoding one request's images has a time budget.
 */
import sharp from 'sharp';
import { HttpError, badRequest, tooLarge } from './errors.js';
import { forEachConcurrent } from '../../data/concurrent.js';

export type RawImage = { shape: number[]; pixels: number[] };
export type ImageInput = string | RawImage;

export interface ImageLimits {
  /** Most images in one request (support and queries together, before augmentation). */
  maxImages: number;
  /** Most pixels (height x width) of one input image. */
  maxPixels: number;
  /** Longest that decoding the images of one call may take, in milliseconds (default: unbounded). */
  decodeBudgetMs?: number;
}

export interface DecodedImages {
  /** count x size x size x 3 bytes. */
  pixels: Uint8Array;
  count: number;
  /** How many images each input stood for (1, or N for a raw [N, H, W, 3] batch). */
  perInput: number[];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:[a-z0-9.+/-]*(;[a-z0-9=-]+)*;base64,/i;
const FORMATS = new Set(['png', 'jpeg', 'webp']);
/** Images of one request decoded at the same time. */
const DECODE_CONCURRENCY = 4;
/**
 * Beyond this aspect ratio the centre square is cut out before resizing: scaling the short side of a
 * 1 x 2,100,000 image to the model's size would make a row longer than libvips can address. Up to it, the
 * cover resize itself crops (the same region; the results differ only in resampling).
 */
const MAX_COVER_ASPECT = 64;

/** The clock of one call's decoding: no new image starts after the deadline, and sharp stops work in flight. */
class DecodeBudget {
  private readonly deadline: number;
  constructor(private readonly budgetMs: number | undefined) {
    this.deadline = budgetMs === undefined ? Infinity : Date.now() + budgetMs;
  }
  exceeded(): boolean {
    return Date.now() > this.deadline;
  }
  /** sharp's own limit for one pipeline: whole seconds, at least 1 (0 means none). */
  sharpTimeout(): { seconds: number } {
    if (this.deadline === Infinity) return { seconds: 0 };
    return { seconds: Math.max(1, Math.ceil((this.deadline - Date.now()) / 1000)) };
  }
  error(field: string): HttpError {
    return tooLarge(field, `decoding this request's images took longer than the server's budget of ${this.budgetMs} ms (--decode-budget-ms), stopped at ${field}; send fewer or smaller images per request`);
  }
  check(field: string): void {
    if (this.exceeded()) throw this.error(field);
  }
}

/** The centre square of an image whose aspect ratio is too extreme for a cover resize, or undefined. */
function centreSquare(width: number, height: number): { left: number; top: number; width: number; height: number } | undefined {
  const side = Math.min(width, height);
  if (Math.max(width, height) <= side * MAX_COVER_ASPECT) return undefined;
  return { left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), width: side, height: side };
}

/** Images an input stands for, checked against the shape rules; used to enforce limits before decoding. */
export function imagesIn(input: ImageInput, field: string): number {
  if (typeof input === 'string') return 1;
  const shape = input.shape;
  if (shape.length === 3) return 1;
  if (shape.length === 4) return shape[0] as number;
  throw badRequest(`${field}.shape`, `expected [H, W, 3] or [N, H, W, 3], got [${shape.join(', ')}]`);
}

/** Counts the images of several fields together and refuses the request when there are too many. */
export function checkImageCount(groups: { field: string; inputs: ImageInput[]; fieldOf: (i: number) => string }[], limits: ImageLimits): number {
  let total = 0;
  for (const g of groups) g.inputs.forEach((input, i) => (total += imagesIn(input, g.fieldOf(i))));
  if (total > limits.maxImages) {
    throw tooLarge(groups.map((g) => g.field).join('+'), `${total} images in one request; the limit is ${limits.maxImages}`);
  }
  return total;
}

/** Decodes every input; `fieldOf(i)` names input i in error answers (for example "body.queries[3]"). */
export async function decodeImages(inputs: ImageInput[], fieldOf: (i: number) => string, size: number, limits: ImageLimits): Promise<DecodedImages> {
  // A few at a time: a small PNG can expand to maxPixels, so decoding a whole request at once could
  // hold hundreds of large bitmaps in memory.
  const parts: { pixels: Uint8Array; count: number }[] = new Array(inputs.length);
  const budget = new DecodeBudget(limits.decodeBudgetMs);
  await forEachConcurrent(inputs.length, DECODE_CONCURRENCY, async (i) => {
    budget.check(fieldOf(i));
    parts[i] = await decodeOne(inputs[i] as ImageInput, fieldOf(i), size, limits, budget);
  });
  const count = parts.reduce((n, p) => n + p.count, 0);
  const pixels = new Uint8Array(count * size * size * 3);
  let offset = 0;
  for (const p of parts) {
    pixels.set(p.pixels, offset);
    offset += p.pixels.length;
  }
  return { pixels, count, perInput: parts.map((p) => p.count) };
}

async function decodeOne(input: ImageInput, field: string, size: number, limits: ImageLimits, budget: DecodeBudget): Promise<{ pixels: Uint8Array; count: number }> {
  if (typeof input === 'string') return { pixels: await decodeEncoded(input, field, size, limits, budget), count: 1 };
  return decodeRaw(input, field, size, limits, budget);
}

async function decodeEncoded(text: string, field: string, size: number, limits: ImageLimits, budget: DecodeBudget): Promise<Uint8Array> {
  const body = text.replace(DATA_URL, '').replace(/\s+/g, '');
  if (body.length === 0 || body.length % 4 === 1 || !BASE64.test(body)) {
    throw badRequest(field, 'expected base64 of a PNG, JPEG or WebP image (or an object with "shape" and "pixels")');
  }
  const bytes = Buffer.from(body, 'base64');
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw badRequest(field, 'the image does not decode; expected a PNG, JPEG or WebP file in base64');
  }
  if (!meta.format || !FORMATS.has(meta.format)) {
    throw badRequest(field, `images must be PNG, JPEG or WebP; this one is ${meta.format ?? 'of an unknown format'}`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width * height > limits.maxPixels) {
    throw tooLarge(field, `the image is ${width}x${height} = ${width * height} pixels; the limit is ${limits.maxPixels}`);
  }
  // EXIF orientations 5-8 swap width and height.
  const oriented = meta.orientation !== undefined && meta.orientation >= 5 ? { width: height, height: width } : { width, height };
  const square = centreSquare(oriented.width, oriented.height);
  try {
    let pipeline = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error', pages: 1 }).timeout(budget.sharpTimeout()).rotate();
    if (square) pipeline = pipeline.extract(square);
    const out = await pipeline
      .toColourspace('srgb')
      .removeAlpha()
      .resize(size, size, { fit: 'cover' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return ensureRgb(out.data, out.info.channels, size, field);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    if (budget.exceeded()) throw budget.error(field);
    throw badRequest(field, 'the image does not decode (truncated or corrupt file)');
  }
}

function ensureRgb(data: Buffer, channels: number, size: number, field: string): Uint8Array {
  const n = size * size;
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, n * 3).slice();
  if (channels === 1) {
    const rgb = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = data[i] as number;
    return rgb;
  }
  throw badRequest(field, `the image decodes to ${channels} channels; expected RGB or greyscale`);
}

async function decodeRaw(input: RawImage, field: string, size: number, limits: ImageLimits, budget: DecodeBudget): Promise<{ pixels: Uint8Array; count: number }> {
  const shape = input.shape;
  const [count, height, width, channels] = shape.length === 4 ? shape : [1, ...shape];
  if ((shape.length !== 3 && shape.length !== 4) || channels !== 3) {
    throw badRequest(`${field}.shape`, `expected [H, W, 3] or [N, H, W, 3], got [${shape.join(', ')}]`);
  }
  if (!(count! >= 1 && height! >= 1 && width! >= 1)) throw badRequest(`${field}.shape`, 'every dimension must be at least 1');
  if (height! * width! > limits.maxPixels) {
    throw tooLarge(`${field}.shape`, `${height}x${width} = ${height! * width!} pixels per image; the limit is ${limits.maxPixels}`);
  }
  const perImage = height! * width! * 3;
  const expected = count! * perImage;
  const values = input.pixels;
  if (values.length !== expected) {
    throw badRequest(`${field}.pixels`, `shape [${shape.join(', ')}] needs ${expected} values, got ${values.length}`);
  }
  const bytes = new Uint8Array(expected);
  for (let i = 0; i < expected; i++) {
    const v = values[i] as number;
    if (!Number.isInteger(v) || v < 0 || v > 255) throw badRequest(`${field}.pixels[${i}]`, `expected an integer 0-255, got ${JSON.stringify(v)}`);
    bytes[i] = v;
  }
  if (height === size && width === size) return { pixels: bytes, count: count! };
  const out = new Uint8Array(count! * size * size * 3);
  const square = centreSquare(width!, height!);
  for (let k = 0; k < count!; k++) {
    budget.check(field);
    let resized: Buffer;
    try {
      let pipeline = sharp(bytes.subarray(k * perImage, (k + 1) * perImage), { raw: { width: width!, height: height!, channels: 3 }, limitInputPixels: false })
        .timeout(budget.sharpTimeout());
      if (square) pipeline = pipeline.extract(square);
      resized = await pipeline.resize(size, size, { fit: 'cover' }).raw().toBuffer();
    } catch (err) {
      if (budget.exceeded()) throw budget.error(field);
      throw badRequest(`${field}.shape`, `an image of shape [${shape.join(', ')}] could not be resized to ${size}x${size}: ${(err as Error).message}`);
    }
    out.set(resized, k * size * size * 3);
  }
  return { pixels: out, count: count! };
}

/**
 * The pixels of a set of equally sized images, held in chunks that each hold whole images, so that a set larger
 * than one typed array (4 GiB in Node 20; tieredImageNet's train split is 9.5 GB) is read and sampled without
 * ever being in one buffer. A set that fits is one chunk, often a view into the buffer it was read into.
 * Browser-safe: no Node imports.
 */

/** Default chunk size: large enough that only full-size sets have more than one, well under the 4 GiB limit. */
export const DEFAULT_CHUNK_BYTES = 2 ** 30;

export class ImageStore {
  /** Images in every chunk but the last. */
  readonly imagesPerChunk: number;
  readonly count: number;

  /** `chunks` must each hold a whole number of images, every chunk but the last the same number. */
  constructor(readonly chunks: readonly Uint8Array[], readonly imageBytes: number) {
    if (!(imageBytes > 0) || !Number.isInteger(imageBytes)) throw new RangeError(`image size ${imageBytes} bytes is not a positive integer`);
    let count = 0;
    for (const c of chunks) {
      if (c.length % imageBytes !== 0) throw new RangeError(`a chunk of ${c.length} bytes does not hold whole images of ${imageBytes} bytes`);
      count += c.length / imageBytes;
    }
    this.imagesPerChunk = chunks.length > 0 ? chunks[0].length / imageBytes : 0;
    for (let i = 1; i < chunks.length - 1; i++) {
      if (chunks[i].length !== chunks[0].length) throw new RangeError('every chunk but the last must hold the same number of images');
    }
    if (chunks.length > 1 && this.imagesPerChunk === 0) throw new RangeError('an empty chunk before others');
    this.count = count;
  }

  /** Images per chunk for a chunk size in bytes (at least one image). */
  static imagesPerChunkFor(imageBytes: number, chunkBytes: number = DEFAULT_CHUNK_BYTES): number {
    return Math.max(1, Math.floor(chunkBytes / imageBytes));
  }

  /** Views of `bytes` (no copy), split into chunks of at most `chunkBytes`. */
  static fromBytes(bytes: Uint8Array, imageBytes: number, chunkBytes: number = DEFAULT_CHUNK_BYTES): ImageStore {
    const step = ImageStore.imagesPerChunkFor(imageBytes, chunkBytes) * imageBytes;
    if (bytes.length <= step) return new ImageStore([bytes], imageBytes);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += step) chunks.push(bytes.subarray(at, Math.min(bytes.length, at + step)));
    return new ImageStore(chunks, imageBytes);
  }

  /** Uninitialised chunks for `count` images, for a reader to fill in place. */
  static allocate(count: number, imageBytes: number, chunkBytes: number = DEFAULT_CHUNK_BYTES): ImageStore {
    const per = ImageStore.imagesPerChunkFor(imageBytes, chunkBytes);
    const chunks: Uint8Array[] = [];
    for (let done = 0; done < count; done += per) chunks.push(new Uint8Array(Math.min(per, count - done) * imageBytes));
    return new ImageStore(chunks, imageBytes);
  }

  get byteLength(): number { return this.count * this.imageBytes; }

  /** Image `i`'s bytes (a view). */
  image(i: number): Uint8Array {
    const per = this.imagesPerChunk;
    const c = this.chunks.length === 1 ? 0 : Math.floor(i / per);
    const at = (i - c * per) * this.imageBytes;
    return this.chunks[c].subarray(at, at + this.imageBytes);
  }

  /** Every image in one buffer (a view when there is one chunk): for sets that fit in one typed array. */
  all(): Uint8Array { return this.images(0, this.count); }

  /** Images start..end-1 as one buffer: a view when they are in one chunk, else a copy. */
  images(start: number, end: number): Uint8Array {
    if (end <= start) return new Uint8Array(0);
    const per = this.imagesPerChunk;
    const c = Math.floor(start / per);
    if (this.chunks.length === 1 || Math.floor((end - 1) / per) === c) {
      const base = this.chunks.length === 1 ? 0 : c * per;
      return this.chunks[this.chunks.length === 1 ? 0 : c].subarray((start - base) * this.imageBytes, (end - base) * this.imageBytes);
    }
    const out = new Uint8Array((end - start) * this.imageBytes);
    for (let i = start; i < end; i++) out.set(this.image(i), (i - start) * this.imageBytes);
    return out;
  }
}

/**
 * Merges the images of requests that arrive together into one feature-extractor run.
 *
 * Each request submits its images (uint8 NHWC, already resized to the model's size) as one job. A run
 * starts when `maxBatch` images are waiting or when the oldest waiting job has waited `maxWaitMs`;
 * only one run is in flight at a time, so requests that arrive during a run form the next batch. A job
 * larger than `maxBatch` is split over several runs. The queue is bounded in images: a job that would
 * push it past `maxQueuedImages` is refused with QueueFullError (the server answers 503), except when
 * the queue is empty, so a single large request can always proceed.
 */

export type ExtractFn = (pixels: Uint8Array, count: number) => Promise<Float32Array>;

export interface BatcherOptions {
  /** Most images per extractor run. */
  maxBatch: number;
  /** Longest a job waits for company before its run starts, in milliseconds. */
  maxWaitMs: number;
  /** Most images waiting (not yet handed to a run) before new jobs are refused. */
  maxQueuedImages: number;
  /** Called after each run with its size in images and requests, and its duration in seconds. */
  onRun?: (images: number, requests: number, seconds: number) => void;
}

export class QueueFullError extends Error {
  constructor(readonly queuedImages: number) {
    super(`the extraction queue is full (${queuedImages} images waiting); retry shortly`);
    this.name = 'QueueFullError';
  }
}

export class BatcherClosedError extends Error {
  constructor() {
    super('the server is shutting down');
    this.name = 'BatcherClosedError';
  }
}

interface Job {
  pixels: Uint8Array;
  count: number;
  /** Images already handed to a run. */
  taken: number;
  /** Images whose features have arrived. */
  done: number;
  features: Float32Array;
  enqueuedAt: number;
  failed: boolean;
  resolve: (features: Float32Array) => void;
  reject: (err: unknown) => void;
}

export class ExtractionBatcher {
  private readonly pending: Job[] = [];
  private waitingImages = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly extract: ExtractFn,
    private readonly imageBytes: number,
    private readonly featureDim: number,
    private readonly options: BatcherOptions,
  ) {
    if (!(options.maxBatch >= 1)) throw new RangeError('maxBatch must be at least 1');
  }

  /** Images waiting for a run. */
  get queuedImages(): number {
    return this.waitingImages;
  }

  /** Features (count x featureDim, as the extractor returns them) of `count` images. */
  submit(pixels: Uint8Array, count: number): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new BatcherClosedError());
    if (pixels.length !== count * this.imageBytes) {
      return Promise.reject(new RangeError(`expected ${count * this.imageBytes} pixel bytes for ${count} images, got ${pixels.length}`));
    }
    if (count === 0) return Promise.resolve(new Float32Array(0));
    if (this.waitingImages > 0 && this.waitingImages + count > this.options.maxQueuedImages) {
      return Promise.reject(new QueueFullError(this.waitingImages));
    }
    return new Promise<Float32Array>((resolve, reject) => {
      this.pending.push({
        pixels, count, taken: 0, done: 0, features: new Float32Array(count * this.featureDim),
        enqueuedAt: Date.now(), failed: false, resolve, reject,
      });
      this.waitingImages += count;
      this.schedule();
    });
  }

  /** Refuses new jobs and resolves once every accepted job has finished. */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.running && this.pending.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.running || this.pending.length === 0) return;
    if (this.waitingImages >= this.options.maxBatch) {
      this.dispatch();
      return;
    }
    if (this.timer) return;
    const oldest = this.pending.find((j) => j.taken < j.count);
    if (!oldest) return;
    const delay = Math.max(0, oldest.enqueuedAt + this.options.maxWaitMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dispatch();
    }, delay);
  }

  private dispatch(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running || this.pending.length === 0) return;
    // Take images from the front of the queue, splitting the last job if it does not fit.
    const parts: { job: Job; from: number; count: number }[] = [];
    let total = 0;
    for (const job of this.pending) {
      if (total >= this.options.maxBatch) break;
      const available = job.count - job.taken;
      if (available === 0) continue;
      const n = Math.min(available, this.options.maxBatch - total);
      parts.push({ job, from: job.taken, count: n });
      job.taken += n;
      total += n;
    }
    this.waitingImages -= total;
    if (total === 0) return;
    let batch: Uint8Array;
    const first = parts[0]!;
    if (parts.length === 1 && first.from === 0 && first.count === first.job.count) {
      batch = first.job.pixels;
    } else {
      batch = new Uint8Array(total * this.imageBytes);
      let offset = 0;
      for (const p of parts) {
        batch.set(p.job.pixels.subarray(p.from * this.imageBytes, (p.from + p.count) * this.imageBytes), offset);
        offset += p.count * this.imageBytes;
      }
    }
    this.running = true;
    const started = process.hrtime.bigint();
    const jobsInRun = new Set(parts.map((p) => p.job)).size;
    this.extract(batch, total).then(
      (features) => {
        if (features.length !== total * this.featureDim) throw new RangeError(`the extractor returned ${features.length} values for ${total} images of ${this.featureDim} features`);
        let offset = 0;
        for (const p of parts) {
          const n = p.count * this.featureDim;
          if (!p.job.failed) {
            p.job.features.set(features.subarray(offset, offset + n), p.from * this.featureDim);
            p.job.done += p.count;
            if (p.job.done === p.job.count) this.finish(p.job);
          }
          offset += n;
        }
      },
    ).catch((err: unknown) => {
      for (const p of parts) this.fail(p.job, err);
    }).finally(() => {
      this.options.onRun?.(total, jobsInRun, Number(process.hrtime.bigint() - started) / 1e9);
      this.running = false;
      this.schedule();
      if (!this.running && this.pending.length === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
  }

  private finish(job: Job): void {
    this.remove(job);
    job.resolve(job.features);
  }

  private fail(job: Job, err: unknown): void {
    if (job.failed) return;
    job.failed = true;
    this.waitingImages -= job.count - job.taken;
    job.taken = job.count;
    this.remove(job);
    job.reject(err);
  }

  private remove(job: Job): void {
    const i = this.pending.indexOf(job);
    if (i >= 0) this.pending.splice(i, 1);
  }
}

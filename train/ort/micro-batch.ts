/**
 * Gradient accumulation over micro-batches for the ONNX Runtime engine: which micro-batch size a step uses,
 * and the rows of a whole-batch tensor that one micro-batch takes.
 *
 * Every SKD loss of the step graph is a mean over rows (Gen-0: CE over 4B rows + gamma * BCE over 4B x 4;
 * Gen-1: KD as T^2/B * sum over B rows + gamma/3 * mean over B rows), so for k equal micro-batches the
 * whole-batch loss and gradient are the means of the micro-batches' ones; the one difference is batch-norm,
 * whose batch statistics are then those of each micro-batch (running statistics updated once per
 * micro-batch, in order, as gradient accumulation in PyTorch does).
 *
 * The memory rule (auto): a step's peak memory is taken to grow with the bytes of the network's forward
 * activations for its rows (StepGraph.activationBytes), which the reverse pass keeps alive, times
 * STEP_MEMORY_FACTOR (ONNX Runtime also keeps the batch-norm intermediates, the Winograd tiles of every
 * convolution's input for its filter gradient, the reverse pass's own temporaries, and its memory arena's
 * slack). The step may use MEMORY_MARGIN of what the machine has (os.totalmem(), or the cgroup limit when
 * lower) minus what the process already holds (its RSS); auto takes the whole batch when that fits, else
 * the largest divisor of the batch size that does.
 */
import { totalmem } from 'node:os';
import { UserError } from '../../data/errors.js';

/**
 * Peak step memory over forward-activation bytes, from the train-step bench's worker on 2 threads (peak RSS
 * minus the RSS before the engine was built, over StepGraph.activationBytes, ONNX Runtime's CPU arena on): on
 * 256 rows at 32x32, ResNet-12 16-40-80-160 2085 / 385 MiB = 5.4 and the full ResNet-12 8394 / 1542 MiB = 5.4;
 * the full ResNet-12 at 84x84 in micro-batches of 16 (64 rows) 15099 / 2635 MiB = 5.7. Conv-4's small step
 * measures 8.0 (1532 / 191 MiB), which only matters where a few GB are left. Rounded up.
 */
export const STEP_MEMORY_FACTOR = 6;
/** Share of the free memory a step may plan to use: the rest is for the OS, other processes and fragmentation. */
export const MEMORY_MARGIN = 0.8;

/** Bytes the machine lets this process use beyond what it holds now, with the safety margin applied. */
export function usableBytes(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  const machine = limit > 0 && limit < totalmem() ? limit : totalmem();
  return Math.max(0, (machine - process.memoryUsage().rss) * MEMORY_MARGIN);
}

/** The whole batch when it fits in `available` bytes, else the largest divisor of `batch` that fits (at least 1). */
export function chooseMicroBatch(batch: number, bytesPerImage: number, available: number): number {
  for (let m = batch; m >= 1; m--) if (batch % m === 0 && m * bytesPerImage <= available) return m;
  return 1;
}

/** Refuses a micro-batch size that is not a positive integer dividing the batch size, in one line. */
export function checkMicroBatch(microBatch: number, batch: number): void {
  if (!Number.isInteger(microBatch) || microBatch < 1) throw new UserError(`--micro-batch must be auto or an integer >= 1, got ${microBatch}`);
  if (batch % microBatch !== 0) {
    const divisors = Array.from({ length: batch }, (_, i) => i + 1).filter((d) => batch % d === 0);
    throw new UserError(`--micro-batch ${microBatch} does not divide --batch_size ${batch}: a step is split into equal micro-batches; use one of ${divisors.join(', ')} or auto`);
  }
}

export interface MicroBatchChoice {
  /** Images per micro-batch. */
  size: number;
  /** The one line to print when the batch is split; undefined when it is not. */
  note?: string;
}

const gb = (bytes: number) => (bytes / 1e9).toFixed(bytes < 10e9 ? 1 : 0);

/**
 * The micro-batch size of a run: `requested` as given (a flag, or the checkpoint being resumed), or for
 * 'auto' the rule above from the estimated bytes per image.
 */
export function resolveMicroBatch(requested: number | 'auto', batch: number, bytesPerImage: number, available: number): MicroBatchChoice {
  const caveat = '(batch-norm statistics are per micro-batch)';
  if (requested !== 'auto') {
    checkMicroBatch(requested, batch);
    if (requested === batch) return { size: batch };
    return { size: requested, note: `skd: accumulating gradients over ${batch / requested} micro-batches of ${requested} per step of ${batch} images ${caveat}` };
  }
  const size = chooseMicroBatch(batch, bytesPerImage, available);
  if (size === batch) return { size };
  const still = size * bytesPerImage > available ? ` (about ${gb(size * bytesPerImage)} GB each, which may still not fit)` : '';
  return {
    size,
    note: `skd: a step of ${batch} images needs about ${gb(batch * bytesPerImage)} GB, more than this machine has (${gb(available)} GB usable): ` +
      `accumulating gradients over ${batch / size} micro-batches of ${size}${still} ${caveat}`,
  };
}

/**
 * The rows of one micro-batch from a whole-batch tensor whose rows are `blocks` blocks of `batch` rows each
 * (Gen-0: x, x90, x180, x270; Gen-1: x, x180): rows k * batch + start .. k * batch + start + count - 1 of
 * every block k, in that order, each row `rowSize` values. The whole batch is returned as it is.
 */
export function blockRows(data: Float32Array, rowSize: number, batch: number, blocks: number, start: number, count: number): Float32Array {
  if (start === 0 && count === batch) return data;
  const out = new Float32Array(blocks * count * rowSize);
  for (let k = 0; k < blocks; k++) {
    const from = (k * batch + start) * rowSize;
    out.set(data.subarray(from, from + count * rowSize), k * count * rowSize);
  }
  return out;
}

/**
 * Rotations of an NCHW batch over Float32Array, the same as train/rotate.ts's TensorFlow.js ops on NHWC
 * (numpy rot90 semantics, counter-clockwise; square images): x90[i][j] = x[j][S-1-i],
 * x180[i][j] = x[S-1-i][S-1-j], x270[i][j] = x[S-1-j][i].
 */
import { nhwcToNchw as transposeToNchw } from '../../infer/layout.js';

type Turn = 0 | 1 | 2 | 3;

function rotateInto(src: Float32Array, dst: Float32Array, dstOffset: number, planes: number, s: number, turn: Turn): void {
  const area = s * s;
  for (let p = 0; p < planes; p++) {
    const base = p * area;
    const out = dstOffset + base;
    if (turn === 0) { dst.set(src.subarray(base, base + area), out); continue; }
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) {
        const from = turn === 1 ? j * s + (s - 1 - i) : turn === 2 ? (s - 1 - i) * s + (s - 1 - j) : (s - 1 - j) * s + i;
        dst[out + i * s + j] = src[base + from];
      }
    }
  }
}

/** [x, x90, x180, x270] (turns [0, 1, 2, 3]) or [x, x180] (turns [0, 2]) of an NCHW batch [n, c, s, s]. */
export function rotatedBatch(x: Float32Array, n: number, c: number, s: number, turns: readonly Turn[]): Float32Array {
  const size = n * c * s * s;
  const out = new Float32Array(size * turns.length);
  turns.forEach((t, k) => rotateInto(x, out, k * size, n * c, s, t));
  return out;
}

/** A new NCHW copy of an NHWC batch. */
export function nhwcToNchw(src: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const dst = new Float32Array(src.length);
  transposeToNchw(src, dst, n, h, w, c);
  return dst;
}

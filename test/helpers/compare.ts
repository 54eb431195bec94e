/** Largest absolute difference divided by the largest expected magnitude: the fixtures' "relative" tolerance. */
export function maxRelative(actual: Float32Array, expected: number[]): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

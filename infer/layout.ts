/** Moving a float image batch between the channels-last (NHWC) and channels-first (NCHW) layouts. */

/** Transposes a batch from NCHW to NHWC (the inverse of nhwcToNchw). */
export function nchwToNhwc(src: Float32Array, dst: Float32Array, n: number, h: number, w: number, c: number): void {
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * plane * c;
    for (let ch = 0; ch < c; ch++) {
      const srcBase = base + ch * plane;
      for (let p = 0; p < plane; p++) dst[base + p * c + ch] = src[srcBase + p]!;
    }
  }
}

/** Transposes a batch from NHWC to NCHW. */
export function nhwcToNchw(src: Float32Array, dst: Float32Array, n: number, h: number, w: number, c: number): void {
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * plane * c;
    for (let ch = 0; ch < c; ch++) {
      const dstBase = base + ch * plane;
      for (let p = 0; p < plane; p++) dst[dstBase + p] = src[base + p * c + ch]!;
    }
  }
}

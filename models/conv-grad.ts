/**
 * conv2d whose gradients use only forward convolutions (plus transposes), for backends such as wasm that
 * have no Conv2DBackpropFilter kernel.
 *
 * Filter gradient: dW[kh,kw,ci,co] = sum_{n,oh,ow} xpad[n, oh*s+kh, ow*s+kw, ci] * dy[n,oh,ow,co]. Treating
 * the input channels as the batch and the batch as the channels, this is itself a convolution:
 *   conv2d(x^T [ci,H,W,N], dy^T [Ho,Wo,N,co], stride 1, dilation s, padding p) -> [ci,kh,kw,co].
 * Input gradient: for stride 1 a forward convolution of dy with the spatially flipped, in/out-swapped
 * kernel (padding k-1-p); otherwise conv2dTranspose (Conv2DBackpropInput exists on every backend).
 */
import * as tf from '@tensorflow/tfjs-core';

export interface ConvOptions {
  stride: number;
  /** Symmetric zero padding in pixels, as PyTorch's Conv2d(padding=p). */
  padding: number;
}

/** Which formulation conv2d uses for its gradient. 'auto': native where the backend has the kernels. */
export type ConvGradMode = 'auto' | 'native' | 'custom';
let mode: ConvGradMode = 'auto';
const nativeSupport = new Map<string, boolean>();

export function setConvGradMode(m: ConvGradMode): void {
  mode = m;
}

export function getConvGradMode(): ConvGradMode {
  return mode;
}

/** True when the active backend computes conv2d gradients natively (it has Conv2DBackpropFilter). */
export function backendHasNativeConvGrad(backend = tf.getBackend()): boolean {
  let has = nativeSupport.get(backend);
  if (has === undefined) {
    has = tf.getKernel('Conv2DBackpropFilter', backend) !== undefined && tf.getKernel('Conv2DBackpropInput', backend) !== undefined;
    nativeSupport.set(backend, has);
  }
  return has;
}

/** Whether conv2d will use the custom gradient on the active backend. */
export function usesCustomConvGrad(): boolean {
  return mode === 'custom' || (mode === 'auto' && !backendHasNativeConvGrad());
}

/** dW in HWIO layout, computed as a forward convolution. */
export function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, kernel: number, opts: ConvOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const { stride, padding } = opts;
    const xT = tf.transpose(x, [3, 1, 2, 0]); // [ci, H, W, N]
    const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, co]
    let g = tf.conv2d(xT, dyT, 1, padding, 'NHWC', stride); // [ci, >=k, >=k, co]
    if (g.shape[1] !== kernel || g.shape[2] !== kernel) g = tf.slice(g, [0, 0, 0, 0], [-1, kernel, kernel, -1]);
    return tf.transpose(g, [1, 2, 0, 3]); // [k, k, ci, co]
  });
}

/**
 * The kernel rotated by 180 degrees. Flipping both spatial axes reverses the flattened k*k index, so this
 * moves k*k contiguous blocks of ci*co values; wasm's Reverse kernel takes about ten times longer.
 */
function flipSpatial(w: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, ci, co] = w.shape;
  const data = w.dataSync() as Float32Array;
  const out = new Float32Array(data.length);
  const block = ci * co;
  const last = kh * kw - 1;
  for (let p = 0; p <= last; p++) out.set(data.subarray(p * block, (p + 1) * block), (last - p) * block);
  return tf.tensor4d(out, [kh, kw, ci, co]);
}

/** dx for a stride-1 convolution as a forward convolution; conv2dTranspose otherwise. */
export function conv2dInputGrad(dy: tf.Tensor4D, w: tf.Tensor4D, xShape: [number, number, number, number], opts: ConvOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const k = w.shape[0];
    if (opts.stride === 1 && k - 1 - opts.padding >= 0) {
      // Flip spatially and swap in/out: [k,k,ci,co] -> [k,k,co,ci].
      const wFlipped = tf.transpose(k === 1 ? w : flipSpatial(w), [0, 1, 3, 2]);
      return tf.conv2d(dy, wFlipped as tf.Tensor4D, 1, k - 1 - opts.padding);
    }
    return tf.conv2dTranspose(dy, w, xShape, opts.stride, opts.padding);
  });
}

/**
 * Both conv2d gradients for a given dy: the backend's native kernels when it has them (and the mode allows),
 * otherwise the forward-convolution formulation above.
 */
export function conv2dGradients(x: tf.Tensor4D, w: tf.Tensor4D, dy: tf.Tensor4D, opts: ConvOptions): { dx: tf.Tensor4D; dw: tf.Tensor4D } {
  if (!usesCustomConvGrad()) {
    const attrs = { strides: opts.stride, pad: opts.padding, dataFormat: 'NHWC', dimRoundingMode: undefined };
    const engine = tf.engine();
    // Kernels run directly record nothing on the tape and allocate only their outputs.
    const dx = engine.runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    const dw = engine.runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: w.shape } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    return { dx, dw };
  }
  return { dx: conv2dInputGrad(dy, w, x.shape, opts), dw: conv2dFilterGrad(x, dy, w.shape[0], opts) };
}

/** conv2d (NHWC input, HWIO filter) whose gradient avoids Conv2DBackpropFilter. */
export function conv2dCustomGrad(x: tf.Tensor4D, w: tf.Tensor4D, opts: ConvOptions): tf.Tensor4D {
  const f = tf.customGrad<tf.Tensor4D>((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x4, w4, save] = args as [tf.Tensor4D, tf.Tensor4D, tf.GradSaveFunc];
    save([x4, w4]);
    return {
      value: tf.conv2d(x4, w4, opts.stride, opts.padding),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D];
        const { dx, dw } = conv2dGradients(xs, ws, dy, opts);
        return [dx, dw];
      },
    };
  });
  return f(x, w);
}

/** conv2d that picks the native or the custom gradient for the active backend (see setConvGradMode). */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, opts: ConvOptions): tf.Tensor4D {
  if (usesCustomConvGrad()) return conv2dCustomGrad(x, w, opts);
  return tf.conv2d(x, w, opts.stride, opts.padding);
}

/**
 * A correct MaxPoolGrad for the tfjs wasm backend. @tensorflow/tfjs-backend-wasm 4.22.0's kernel routes the
 * gradient of every window whose maximum is not positive to the window's first element (it starts its running
 * maximum at a positive value), so after a leaky ReLU, where all-negative windows are common, the gradients of
 * everything before a max-pool were wrong by several percent. This kernel sends dY to the first maximum of
 * each window, as the cpu backend and PyTorch do.
 */
import * as tf from '@tensorflow/tfjs-core';

interface WasmLike {
  readSync(dataId: unknown): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.backend_util.TypedArray;
}

function maxPoolGrad({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const wasm = backend as WasmLike;
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const x = wasm.readSync(input.dataId) as Float32Array;
  const g = wasm.readSync(dy.dataId) as Float32Array;
  const out = wasm.makeOutput(input.shape, 'float32');
  const dx = wasm.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        for (let c = 0; c < inChannels; c++) {
          let best = -1;
          let bestValue = -Infinity;
          for (let fy = 0; fy < filterHeight; fy++) {
            const iy = oy * strideHeight - top + fy;
            if (iy < 0 || iy >= inHeight) continue;
            for (let fx = 0; fx < filterWidth; fx++) {
              const ix = ox * strideWidth - left + fx;
              if (ix < 0 || ix >= inWidth) continue;
              const k = ((b * inHeight + iy) * inWidth + ix) * inChannels + c;
              if (x[k] > bestValue || best < 0) { bestValue = x[k]; best = k; }
            }
          }
          if (best >= 0) dx[best] += g[((b * outHeight + oy) * outWidth + ox) * inChannels + c];
        }
      }
    }
  }
  return out;
}

/** Replaces the wasm backend's MaxPoolGrad (idempotent). */
export function useCorrectWasmMaxPoolGrad(): void {
  const existing = tf.getKernel('MaxPoolGrad', 'wasm') as { skdFixed?: boolean } | undefined;
  if (existing?.skdFixed) return;
  if (existing) tf.unregisterKernel('MaxPoolGrad', 'wasm');
  tf.registerKernel({ kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: maxPoolGrad, skdFixed: true } as unknown as tf.KernelConfig);
}

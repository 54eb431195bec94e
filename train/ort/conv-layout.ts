/**
 * Convolutions of the step graphs. Where ONNX Runtime's CPU provider has its blocked-channel (NCHWc) kernels,
 * a convolution whose weights are computed in the graph (graph inputs, or the reverse pass's flipped kernel)
 * can still use them: the graph reorders the kernel itself (OIHW -> OIHWBiBo, or OIHWBo for inputs of fewer
 * than 8 channels), and the activations go through ReorderInput / ReorderOutput around the convolution. ONNX
 * Runtime's own layout transformer only does this for constant weights.
 */
import * as ort from 'onnxruntime-node';
import { encodeOnnxModel } from '../../proto/codec.js';
import { TensorDataType } from '../../proto/types.js';
import { GraphBuilder } from './graph-builder.js';

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

export interface ConvShape {
  inChannels: number;
  outChannels: number;
  kernel: number;
  padding: number;
}

/** Channel block of the NCHWc kernels (8 with AVX2, 16 with AVX-512), or 0 for plain Conv everywhere. */
export interface ConvLayout {
  block: number;
}

export const PLAIN_CONV: ConvLayout = { block: 0 };

/** A stride-1 convolution of NCHW `x` [N, Ci, H, W] with `weight` [Co, Ci, k, k] (and optional bias [Co]). */
export function convolution(g: GraphBuilder, layout: ConvLayout, x: string, weight: string, bias: string | undefined, s: ConvShape, outName?: string): string {
  const { inChannels: ci, outChannels: co, kernel: k, padding: p } = s;
  const attrs = { kernel_shape: [k, k], pads: [p, p, p, p], strides: [1, 1] };
  const b = layout.block;
  const blockedInput = b > 0 && ci % b === 0;
  const nchwInput = b > 0 && ci < 8;
  if (b === 0 || co % b !== 0 || (!blockedInput && !nchwInput)) {
    return g.op('Conv', bias ? [x, weight, bias] : [x, weight], attrs, outName);
  }
  const filter = blockedInput
    ? g.op('Transpose', [g.op('Reshape', [weight, g.ints([co / b, b, ci / b, b, k, k])])], { perm: [0, 2, 4, 5, 3, 1] })
    : g.op('Transpose', [g.op('Reshape', [weight, g.ints([co / b, b, ci, k, k])])], { perm: [0, 2, 3, 4, 1] });
  const w = g.op('Reshape', [filter, g.ints([co, ci, k, k])]);
  const input = blockedInput ? g.opIn(NCHWC_DOMAIN, 'ReorderInput', [x]) : x;
  const y = g.opIn(NCHWC_DOMAIN, 'Conv', bias ? [input, w, bias] : [input, w], attrs);
  return g.opIn(NCHWC_DOMAIN, 'ReorderOutput', [y], { channels: co }, outName);
}

let cpuLayout: Promise<ConvLayout> | undefined;

/**
 * The layout for sessions on ONNX Runtime's CPU provider: a probe graph reorders 8 channels, and the padded
 * channel count it returns is the kernels' block size. Builds without the NCHWc kernels (other CPUs) fail the
 * probe and get plain convolutions.
 */
export function cpuConvLayout(): Promise<ConvLayout> {
  cpuLayout ??= probeBlock().then((block) => ({ block }), () => PLAIN_CONV);
  return cpuLayout;
}

async function probeBlock(): Promise<number> {
  const g = new GraphBuilder();
  const x = g.input('x', [1, 8, 1, 1]);
  g.output('y', g.op('Shape', [g.opIn(NCHWC_DOMAIN, 'ReorderInput', [x])]), [4], TensorDataType.INT64);
  const session = await ort.InferenceSession.create(encodeOnnxModel(g.model('nchwc_probe')), { logSeverityLevel: 4, executionProviders: ['cpu'] });
  try {
    const out = await session.run({ x: new ort.Tensor('float32', new Float32Array(8), [1, 8, 1, 1]) });
    const block = Number((out.y.data as BigInt64Array)[1]);
    return block === 8 || block === 16 ? block : 0;
  } finally {
    await session.release();
  }
}

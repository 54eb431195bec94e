/**
 * 3x3, stride-1, padding-1 convolutions of the step graphs as Winograd F(4x4, 3x3) (Lavin and Gray, 2016),
 * on activations laid out [H, W, N, C]. Each 6x6 input tile (stride 4) and each 3x3 kernel is transformed to
 * 36 values; the convolution becomes 36 matrix products [T, C] x [C, Co] over T = tiles x images, a quarter of
 * a direct convolution's multiplications, and the tile transforms are matrix products with the small constant
 * matrices below. The reverse pass uses the same machinery: the input gradient is the convolution of dY with
 * the flipped kernel, and the filter gradient is the product of the forward's transformed input with dY's
 * 4x4 blocks transformed by A, taken back to 3x3 by G.
 *
 * In this layout every tile gather and every transpose moves blocks of N*C contiguous floats, which ONNX
 * Runtime copies quickly; the float32 results differ from a direct convolution by about 1e-5 of the largest
 * value.
 */
import type { ConvDims } from './convolution.js';
import type { GraphBuilder } from './graph-builder.js';

const TILE = 4;
const ALPHA = TILE + 2;
const BT = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]];
const G = [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]];
const AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]];

const transpose = (rows: number[][]): number[][] => rows[0].map((_, j) => rows.map((r) => r[j]));

/** K[k][e]: the 9 kernel taps to the 36 transformed values (G g G^T), for the kernel or its 180-degree turn. */
function kernelTransform(flipped: boolean): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
    const [a, b] = flipped ? [2 - i, 2 - j] : [i, j];
    const row: number[] = [];
    for (let u = 0; u < ALPHA; u++) for (let v = 0; v < ALPHA; v++) row.push(G[u][a] * G[v][b]);
    rows.push(row);
  }
  return rows;
}

/** The constant matrices of the transforms. */
const MATRICES = { BT, A: transpose(AT), AT, K: kernelTransform(false), KT: transpose(kernelTransform(false)), KflipT: transpose(kernelTransform(true)) };

/** One of MATRICES as a graph constant (one per graph). */
function matrix(g: GraphBuilder, name: keyof typeof MATRICES): string {
  const rows = MATRICES[name];
  return g.sharedTensor(`winograd/${name}`, [rows.length, rows[0].length], Float32Array.from(rows.flat()));
}

const tilesAlong = (size: number): number => Math.ceil(size / TILE);

/**
 * Windows of `size` rows and columns every 4 of x [Hx, Wx, N, X], each multiplied by `left` [6, size] on both
 * sides: [6(u), tH, 6(v), tW N, X]. The products below run batched over (u, tile row, v), with the transformed
 * kernels broadcast over tile rows, so the tiles never need reordering.
 */
function transformTiles(g: GraphBuilder, x: string, left: string, size: number, tH: number, tW: number, d: ConvDims, channels: number): string {
  const nx = d.n * channels;
  const windows = (t: number) => g.ints(Array.from({ length: size * t }, (_, i) => (i % t) * TILE + Math.floor(i / t)));
  const rows = g.op('Gather', [x, windows(tH)], { axis: 0 }); // [size, tH, Wx, NX]
  const byRows = g.op('MatMul', [left, g.op('Reshape', [rows, g.ints([size, -1])])]); // [6, tH * Wx * NX]
  const cols = g.op('Gather', [g.op('Reshape', [byRows, g.ints([ALPHA, tH, -1, nx])]), windows(tW)], { axis: 2 }); // [6, tH, size, tW, NX]
  const both = g.op('MatMul', [left, g.op('Reshape', [cols, g.ints([ALPHA * tH, size, tW * nx])])]); // [6 tH, 6, tW NX]
  return g.op('Reshape', [both, g.ints([ALPHA, tH, ALPHA, tW * d.n, channels])]);
}

/** The inverse for products m [6(u), tH, 6(v), tW N, X]: A^T m A per tile, assembled to [h, w, N, X]. */
function untransformTiles(g: GraphBuilder, m: string, d: ConvDims, x: number, outName?: string): string {
  const tH = tilesAlong(d.h);
  const tW = tilesAlong(d.w);
  const nx = d.n * x;
  const at = matrix(g, 'AT');
  const byRows = g.op('MatMul', [at, g.op('Reshape', [m, g.ints([ALPHA, -1])])]); // [4(p), tH, 6(v), tW NX]
  const both = g.op('MatMul', [at, g.op('Reshape', [byRows, g.ints([TILE * tH, ALPHA, tW * nx])])]); // [4 tH, 4(q), tW NX]
  const image = g.op('Transpose', [g.op('Reshape', [both, g.ints([TILE, tH, TILE, tW, nx])])], { perm: [1, 0, 3, 2, 4] });
  const full = g.op('Reshape', [image, g.ints([TILE * tH, TILE * tW, d.n, x])], {}, TILE * tH === d.h && TILE * tW === d.w ? outName : undefined);
  if (TILE * tH === d.h && TILE * tW === d.w) return full;
  return g.op('Slice', [full, g.ints([0, 0]), g.ints([d.h, d.w]), g.ints([0, 1])], {}, outName);
}

/** Transformed kernels [36, P, Q] as [6, 1, 6, P, Q], broadcast over tile rows. */
const perTileRow = (g: GraphBuilder, u: string, p: number, q: number) => g.op('Reshape', [u, g.ints([ALPHA, 1, ALPHA, p, q])]);

/** x [h, w, N, X] padded by one on the top and left and to 4t + 2 on the bottom and right (the 6x6 input tiles). */
function padForTiles(g: GraphBuilder, x: string, d: ConvDims): string {
  const bottom = TILE * tilesAlong(d.h) + 1 - d.h;
  const right = TILE * tilesAlong(d.w) + 1 - d.w;
  return g.op('Pad', [x, g.ints([1, 1, 0, 0, bottom, right, 0, 0])]);
}

export interface WinogradForward {
  /** [h, w, N, Co] */
  y: string;
  /** The transformed input tiles [6, tH, 6, tW N, Ci], kept for the filter gradient. */
  tiles: string;
}

/** y = conv(x, weight) for x [h, w, N, Ci] and weight [Co, Ci, 3, 3] (PyTorch layout). */
export function winogradConv(g: GraphBuilder, x: string, weight: string, d: ConvDims, outName?: string): WinogradForward {
  const { inChannels: ci, outChannels: co } = d;
  const tiles = transformTiles(g, padForTiles(g, x, d), matrix(g, 'BT'), ALPHA, tilesAlong(d.h), tilesAlong(d.w), d, ci);
  // U [36, Co Ci] = K^T W^T for W [Co Ci, 9]; the products read it transposed.
  const u = perTileRow(g, g.op('Gemm', [matrix(g, 'KT'), g.op('Reshape', [weight, g.ints([co * ci, 9])])], { transB: 1 }), co, ci);
  const y = untransformTiles(g, g.op('MatMul', [tiles, g.op('Transpose', [u], { perm: [0, 1, 2, 4, 3] })]), d, co, outName);
  return { y, tiles };
}

/** dX [h, w, N, Ci] of a Winograd convolution: dY [h, w, N, Co] convolved with the flipped, transposed kernel. */
export function winogradInputGrad(g: GraphBuilder, dy: string, weight: string, d: ConvDims, outName?: string): string {
  const { inChannels: ci, outChannels: co } = d;
  const tiles = transformTiles(g, padForTiles(g, dy, d), matrix(g, 'BT'), ALPHA, tilesAlong(d.h), tilesAlong(d.w), d, co);
  // U' [36, Co Ci] = Kflip^T W^T for W [Co Ci, 9]
  const u = perTileRow(g, g.op('Gemm', [matrix(g, 'KflipT'), g.op('Reshape', [weight, g.ints([co * ci, 9])])], { transB: 1 }), co, ci);
  return untransformTiles(g, g.op('MatMul', [tiles, u]), d, ci, outName);
}

/** dW [Co, Ci, 3, 3] from the forward's transformed tiles and dY [h, w, N, Co]. */
export function winogradFilterGrad(g: GraphBuilder, tiles: string, dy: string, d: ConvDims, outName?: string): string {
  const { inChannels: ci, outChannels: co } = d;
  const tH = tilesAlong(d.h);
  const tW = tilesAlong(d.w);
  const bottom = TILE * tH - d.h;
  const right = TILE * tW - d.w;
  const blocks = bottom || right ? g.op('Pad', [dy, g.ints([0, 0, 0, 0, bottom, right, 0, 0])]) : dy;
  const dm = transformTiles(g, blocks, matrix(g, 'A'), TILE, tH, tW, d, co); // [6, tH, 6, tW N, Co]
  const perRow = g.op('MatMul', [g.op('Transpose', [dm], { perm: [0, 1, 2, 4, 3] }), tiles]); // [6, tH, 6, Co, Ci]
  const du = tH === 1 ? perRow : g.op('ReduceSum', [perRow, g.ints([1])], { keepdims: 1 });
  // dW [Co Ci, 9] = dU^T K^T for dU [36, Co Ci]
  const dw = g.op('Gemm', [g.op('Reshape', [du, g.ints([ALPHA * ALPHA, co * ci])]), matrix(g, 'K')], { transA: 1, transB: 1 });
  return g.op('Reshape', [dw, g.ints([co, ci, 3, 3])], {}, outName);
}

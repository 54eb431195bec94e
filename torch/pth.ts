/**
 * Reads files written by torch.save without Python and without running pickled code: PyTorch's zip format
 * (1.6 and later: `<name>/data.pkl` plus one entry per storage) and its legacy format (a magic-number pickle, a
 * protocol pickle, a system-info pickle, the object pickle, the storage keys, then each storage's bytes).
 *
 * The pickle reader (data/pickle.ts) allows only the globals torch.save writes for a checkpoint of plain
 * objects: ordered dicts, tensor rebuild functions, typed storages and argparse.Namespace. Anything else is
 * refused with a message naming the global, before anything is called.
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { fsReason, UserError } from '../data/errors.js';
import { parsePickleAt, type PickleOptions } from '../data/pickle.js';
import { numberOf, PyGlobal, PyObject, PyTuple, type PyDict, type PyValue } from '../data/py-values.js';
import { readAt, ZipArchive } from '../data/zip.js';

export type TorchDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** Storage classes of torch.save's pickles, with the element type and size of each. */
const STORAGES: Record<string, { dtype: TorchDtype; size: number }> = {
  FloatStorage: { dtype: 'float32', size: 4 }, HalfStorage: { dtype: 'float16', size: 2 }, BFloat16Storage: { dtype: 'bfloat16', size: 2 },
  DoubleStorage: { dtype: 'float64', size: 8 }, LongStorage: { dtype: 'int64', size: 8 }, IntStorage: { dtype: 'int32', size: 4 },
  ShortStorage: { dtype: 'int16', size: 2 }, CharStorage: { dtype: 'int8', size: 1 }, ByteStorage: { dtype: 'uint8', size: 1 }, BoolStorage: { dtype: 'bool', size: 1 },
};

/** A tensor of the file, as float32 (integers and halves converted), in its logical (contiguous) layout. */
export interface TorchTensor { dtype: TorchDtype; shape: number[]; data: Float32Array }

/** A storage the pickle referred to; its bytes are found by key after parsing. */
interface StorageRef { key: string; dtype: TorchDtype; itemBytes: number; numel: number; bytes?: Uint8Array }

/** A tensor as the pickle describes it; built once every storage is read. */
class TensorRef {
  constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}

export interface TorchFile {
  file: string;
  format: 'zip' | 'legacy';
  /** The saved object; tensors are PyObject(TorchTensor). */
  root: PyValue;
}

export const TORCH_EXPECTED = 'only what torch.save writes for a checkpoint: dicts, ordered dicts, tensors, storages, argparse.Namespace, numbers and strings';
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

function intsOf(v: PyValue, what: string, file: string): number[] {
  if (!(v instanceof PyTuple)) throw new UserError(`${file}: a tensor's ${what} is not a tuple`);
  const out = v.items.map(numberOf);
  if (out.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new UserError(`${file}: a tensor's ${what} (${out.join(', ')}) is not a list of whole numbers, 0 or more`);
  return out;
}

/** Pickle options for torch.save's object pickle; `storages` collects the storages it refers to. */
function torchPickleOptions(file: string, storages: Map<string, StorageRef>): PickleOptions {
  const rebuild = (args: PyValue[]): PyValue => {
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof PyObject) || !((storage.value as StorageRef).key !== undefined)) throw new UserError(`${file}: a tensor without a storage`);
    return new PyObject(new TensorRef(storage.value as StorageRef, numberOf(offset), intsOf(size, 'size', file), intsOf(stride, 'stride', file)));
  };
  const globals = new Map<string, (args: PyValue[], file: string) => PyValue>([
    ['torch._utils._rebuild_tensor_v2', rebuild],
    ['torch._utils._rebuild_tensor', rebuild],
    ['torch._utils._rebuild_parameter', (args) => args[0]],
    ['argparse.Namespace', () => new Map() as PyDict],
  ]);
  for (const name of Object.keys(STORAGES)) {
    globals.set(`torch.${name}`, () => { throw new UserError(`${file}: the pickle calls torch.${name} directly; torch.save refers to storages by persistent id`); });
  }
  const persistentLoad = (pid: PyValue): PyValue => {
    // zip: ('storage', type, key, location, numel); legacy: ('storage', type, key, location, numel, view_metadata)
    if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage' || pid.items.length < 5) throw new UserError(`${file}: unsupported persistent id in the pickle (expected a torch storage)`);
    const [, type, key, , numel, view] = pid.items;
    if (!(type instanceof PyGlobal) || type.module !== 'torch' || !STORAGES[type.name]) throw new UserError(`${file}: unsupported storage type ${type instanceof PyGlobal ? type.full : String(type)}`);
    if (view !== undefined && view !== null) throw new UserError(`${file}: storage views (legacy format before PyTorch 0.4) are not supported`);
    const k = String(key);
    const n = numberOf(numel);
    if (!Number.isSafeInteger(n) || n < 0) throw new UserError(`${file}: storage ${k} has ${String(numel)} elements`);
    let ref = storages.get(k);
    if (!ref) storages.set(k, (ref = { key: k, dtype: STORAGES[type.name].dtype, itemBytes: STORAGES[type.name].size, numel: n }));
    return new PyObject(ref);
  };
  return { globals, persistentLoad, expected: TORCH_EXPECTED };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function elementReader(ref: StorageRef): (i: number) => number {
  const b = ref.bytes!;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (ref.dtype) {
    case 'float32': return (i) => v.getFloat32(i * 4, true);
    case 'float16': return (i) => halfToFloat(v.getUint16(i * 2, true));
    case 'bfloat16': return (i) => { const t = new DataView(new ArrayBuffer(4)); t.setUint16(2, v.getUint16(i * 2, true), false); return t.getFloat32(0, false); };
    case 'float64': return (i) => v.getFloat64(i * 8, true);
    case 'int64': return (i) => Number(v.getBigInt64(i * 8, true));
    case 'int32': return (i) => v.getInt32(i * 4, true);
    case 'int16': return (i) => v.getInt16(i * 2, true);
    case 'int8': return (i) => v.getInt8(i);
    case 'uint8': case 'bool': return (i) => v.getUint8(i);
  }
}

function buildTensor(t: TensorRef, file: string): TorchTensor {
  const ref = t.storage;
  if (!ref.bytes) throw new UserError(`${file}: storage ${ref.key} is missing from the file`);
  if (t.stride.length !== t.shape.length) throw new UserError(`${file}: a tensor has ${t.shape.length} dimensions and ${t.stride.length} strides`);
  const size = t.shape.reduce((a, b) => a * b, 1);
  let last = t.offset;
  for (let d = 0; d < t.shape.length; d++) if (t.shape[d] > 0) last += (t.shape[d] - 1) * t.stride[d];
  if (size > 0 && last >= ref.numel) throw new UserError(`${file}: a tensor of shape (${t.shape.join(', ')}) reaches element ${last} of storage ${ref.key}, which holds ${ref.numel}`);
  const read = elementReader(ref);
  const data = new Float32Array(size);
  const index = new Array<number>(t.shape.length).fill(0);
  for (let n = 0; n < size; n++) {
    let at = t.offset;
    for (let d = 0; d < index.length; d++) at += index[d] * t.stride[d];
    data[n] = read(at);
    for (let d = index.length - 1; d >= 0; d--) { if (++index[d] < t.shape[d]) break; index[d] = 0; }
  }
  return { dtype: ref.dtype, shape: [...t.shape], data };
}

/** Replaces every TensorRef in the object by its TorchTensor (once the storages are read). */
function resolveTensors(v: PyValue, file: string, seen = new Set<object>()): void {
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  const fix = (x: PyValue): PyValue => {
    if (x instanceof PyObject && x.value instanceof TensorRef) return new PyObject(buildTensor(x.value, file));
    resolveTensors(x, file, seen);
    return x;
  };
  if (v instanceof Map) for (const [k, x] of v) v.set(k, fix(x));
  else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = fix(v[i]);
  else if (v instanceof PyTuple) for (let i = 0; i < v.items.length; i++) (v.items as PyValue[])[i] = fix(v.items[i]);
}

function checkStorageBytes(ref: StorageRef, length: number, file: string): void {
  if (length !== ref.numel * ref.itemBytes) throw new UserError(`${file}: storage ${ref.key} has ${length} bytes, its ${ref.numel} ${ref.dtype} elements need ${ref.numel * ref.itemBytes}`);
}

function readZipFormat(file: string): TorchFile {
  const zip = ZipArchive.open(file, 'a PyTorch checkpoint (torch.save)');
  try {
    const pkl = zip.entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name) || e.name === 'data.pkl');
    if (!pkl) throw new UserError(`${file}: a zip archive without data.pkl; expected a PyTorch checkpoint written by torch.save`);
    const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
    const storages = new Map<string, StorageRef>();
    const { value } = parsePickleAt(zip.read(pkl), 0, `${file}:${pkl.name}`, torchPickleOptions(file, storages));
    for (const ref of storages.values()) {
      const entry = zip.find(`${prefix}data/${ref.key}`);
      if (!entry) throw new UserError(`${file}: storage ${ref.key} is missing from the archive (no ${prefix}data/${ref.key})`);
      ref.bytes = zip.read(entry);
      checkStorageBytes(ref, ref.bytes.length, file);
    }
    resolveTensors(value, file);
    return { file, format: 'zip', root: value };
  } finally {
    zip.close();
  }
}

function readLegacyFormat(file: string, buf: Uint8Array): TorchFile {
  const magic = parsePickleAt(buf, 0, file, {});
  if (typeof magic.value !== 'bigint' || magic.value !== LEGACY_MAGIC) {
    throw new UserError(`${file}: not a PyTorch checkpoint (neither a zip archive nor the legacy torch.save format)`);
  }
  const protocol = parsePickleAt(buf, magic.end, file, {});
  if (protocol.value !== 1001) throw new UserError(`${file}: legacy torch.save protocol ${String(protocol.value)}, expected 1001`);
  const sysInfo = parsePickleAt(buf, protocol.end, file, {});
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) throw new UserError(`${file}: saved on a big-endian machine; only little-endian checkpoints are read`);
  const storages = new Map<string, StorageRef>();
  const main = parsePickleAt(buf, sysInfo.end, file, torchPickleOptions(file, storages));
  const keys = parsePickleAt(buf, main.end, file, {});
  if (!Array.isArray(keys.value)) throw new UserError(`${file}: the legacy checkpoint's storage list is missing`);
  let at = keys.end;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (const k of keys.value) {
    const ref = storages.get(String(k));
    if (at + 8 > buf.length) throw new UserError(`${file}: the checkpoint is truncated (storage ${String(k)})`);
    const numel = Number(view.getBigInt64(at, true));
    at += 8;
    if (!ref) throw new UserError(`${file}: storage ${String(k)} is stored but no tensor refers to it`);
    if (numel !== ref.numel) throw new UserError(`${file}: storage ${ref.key} holds ${numel} elements, the pickle says ${ref.numel}`);
    const length = numel * ref.itemBytes;
    if (at + length > buf.length) throw new UserError(`${file}: the checkpoint is truncated (storage ${ref.key})`);
    ref.bytes = buf.subarray(at, at + length);
    at += length;
  }
  resolveTensors(main.value, file);
  return { file, format: 'legacy', root: main.value };
}

/** Reads a torch.save file (zip or legacy format) without running any of its code. */
export function readTorchFile(file: string): TorchFile {
  let head: Uint8Array;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new UserError(`${file} is not a file; expected a PyTorch checkpoint (.pth)`);
    head = new Uint8Array(Math.min(4, st.size));
    const fd = openSync(file, 'r');
    try { readAt(fd, 0, head.length, file, head); } finally { closeSync(fd); }
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `checkpoint not found: ${file}` : `cannot read ${file}: ${fsReason(err)}`);
  }
  if (head.length === 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return readZipFormat(file);
  if (head.length >= 2 && head[0] === 0x80) return readLegacyFormat(file, readFileSync(file));
  throw new UserError(`${file}: not a PyTorch checkpoint (expected torch.save's zip or legacy format)`);
}

/** The tensor inside a value of the file, if it is one. */
export function asTensor(v: PyValue | undefined): TorchTensor | undefined {
  return v instanceof PyObject && (v.value as TorchTensor).data instanceof Float32Array ? (v.value as TorchTensor) : undefined;
}

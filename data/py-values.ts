/**
 * The values the pickle reader produces: Python's plain types, numpy arrays, dtypes and scalars, and the
 * references a caller's own globals return; plus the helpers that read numbers out of them.
 */
import { UserError } from './errors.js';

/** Raw bytes from the file (a view, not a copy). `text` reads them as latin1, as Python 3 does with encoding='latin1'. */
export class PyBytes {
  constructor(readonly bytes: Uint8Array) {}
  get text(): string {
    let s = '';
    for (let i = 0; i < this.bytes.length; i += 8192) s += String.fromCharCode(...this.bytes.subarray(i, i + 8192));
    return s;
  }
}

/** Bytes left in the file (offset, length), not read while parsing: a large byte string of a windowed parse. */
export class FileRange { constructor(readonly offset: number, readonly length: number) {} }

/** A numpy dtype: kind letter ('u', 'i', 'f', 'b'), item size in bytes and byte order. */
export interface NumpyDtype { kind: string; itemSize: number; littleEndian: boolean; descr: string }

/** A numpy array as stored: shape, dtype and the raw bytes (a view into the file). */
export class NumpyArray {
  dtype: NumpyDtype | null = null;
  shape: number[] = [];
  fortranOrder = false;
  data: Uint8Array = new Uint8Array(0);
  /** Set instead of `data` when the bytes were left in the file (parsePickleFile). */
  range: FileRange | null = null;
  get size(): number { return this.shape.reduce((a, b) => a * b, 1); }
}

/** A numpy scalar (for example np.int64 inside a list of labels), already converted to a JS number. */
export class NumpyScalar { constructor(readonly value: number) {} }

export type PyValue = null | boolean | number | bigint | string | PyBytes | FileRange | PyValue[] | PyTuple | PyDict | NumpyArray | NumpyDtype | NumpyScalar | PyGlobal | PyObject;
export class PyTuple { constructor(readonly items: PyValue[]) {} }
/** A Python dict; str and bytes keys become JS strings (bytes as latin1), ints become numbers. */
export type PyDict = Map<string | number | boolean | null, PyValue>;
/** A reference to a Python global (module.name) that the reader allowed. */
export class PyGlobal { constructor(readonly module: string, readonly name: string) {} get full(): string { return `${this.module}.${this.name}`; } }
/** Whatever a caller's own global returned (for example a PyTorch tensor); the parser only passes it along. */
export class PyObject { constructor(readonly value: unknown) {} }

export function parseDtype(descr: string, file: string): NumpyDtype {
  const m = /^([<>|=]?)([uifb])(\d+)$/.exec(descr);
  if (!m) throw new UserError(`${file}: unsupported numpy dtype "${descr}" (expected an integer, float or bool type)`);
  return { kind: m[2], itemSize: Number(m[3]), littleEndian: m[1] !== '>', descr };
}

/** A Python int, bool or numpy scalar as a JS number (NaN for anything else). */
export function numberOf(v: PyValue): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof NumpyScalar) return v.value;
  return NaN;
}

/** Reads element at byte offset `at` of the given dtype as a JS number. */
export function readElement(view: DataView, at: number, dtype: NumpyDtype): number {
  const le = dtype.littleEndian;
  switch (dtype.kind + dtype.itemSize) {
    case 'u1': return view.getUint8(at);
    case 'b1': return view.getUint8(at);
    case 'i1': return view.getInt8(at);
    case 'u2': return view.getUint16(at, le);
    case 'i2': return view.getInt16(at, le);
    case 'u4': return view.getUint32(at, le);
    case 'i4': return view.getInt32(at, le);
    case 'u8': return Number(view.getBigUint64(at, le));
    case 'i8': return Number(view.getBigInt64(at, le));
    case 'f4': return view.getFloat32(at, le);
    case 'f8': return view.getFloat64(at, le);
    default: throw new RangeError(`unsupported dtype ${dtype.descr}`);
  }
}

/** The value as a list of integers (a Python list of ints or numpy scalars, or a 1-d numpy integer array). */
export function toIntList(v: PyValue | undefined, file: string, what: string): number[] {
  if (Array.isArray(v)) {
    return v.map((x, i) => {
      const n = numberOf(x as PyValue);
      if (!Number.isInteger(n)) throw new UserError(`${file}: ${what}[${i}] is not an integer`);
      return n;
    });
  }
  if (v instanceof NumpyArray && v.dtype) {
    if (v.shape.length !== 1) throw new UserError(`${file}: ${what} has shape (${v.shape.join(', ')}), expected a 1-d array`);
    if (v.dtype.kind !== 'i' && v.dtype.kind !== 'u') throw new UserError(`${file}: ${what} has dtype ${v.dtype.descr}, expected integers`);
    const dv = new DataView(v.data.buffer, v.data.byteOffset, v.data.byteLength);
    const out = new Array<number>(v.shape[0]);
    for (let i = 0; i < out.length; i++) out[i] = readElement(dv, i * v.dtype.itemSize, v.dtype);
    return out;
  }
  throw new UserError(`${file}: ${what} is missing or not a list of integers`);
}

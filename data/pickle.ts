/**
 * A small, safe pickle reader for the published dataset files: protocols 0-5 opcodes for plain data
 * (dicts, lists, tuples, numbers, str, bytes) plus numpy arrays, dtypes and scalars. Any other class in the
 * file is refused rather than executed.
 *
 * Python 2 `str` (BINSTRING, SHORT_BINSTRING) and Python 3 bytes become `PyBytes`, a view into the file's
 * buffer: a numpy array's pixels are never copied while parsing.
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

/** A numpy dtype: kind letter ('u', 'i', 'f', 'b'), item size in bytes and byte order. */
export interface NumpyDtype { kind: string; itemSize: number; littleEndian: boolean; descr: string }

/** A numpy array as stored: shape, dtype and the raw bytes (a view into the file). */
export class NumpyArray {
  dtype: NumpyDtype | null = null;
  shape: number[] = [];
  fortranOrder = false;
  data: Uint8Array = new Uint8Array(0);
  get size(): number { return this.shape.reduce((a, b) => a * b, 1); }
}

/** A numpy scalar (for example np.int64 inside a list of labels), already converted to a JS number. */
export class NumpyScalar { constructor(readonly value: number) {} }

export type PyValue = null | boolean | number | bigint | string | PyBytes | PyValue[] | PyTuple | PyDict | NumpyArray | NumpyDtype | NumpyScalar | PyGlobal;
export class PyTuple { constructor(readonly items: PyValue[]) {} }
/** A Python dict; str and bytes keys become JS strings (bytes as latin1), ints become numbers. */
export type PyDict = Map<string | number | boolean | null, PyValue>;
class PyGlobal { constructor(readonly module: string, readonly name: string) {} }
class Mark {}
const MARK = new Mark();

const NUMPY_RECONSTRUCT = new Set(['numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct']);
const NUMPY_SCALAR = new Set(['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar']);
/** Protocol 5 pickles of numpy >= 1.16 store arrays as _frombuffer(buffer, dtype, shape, order). */
const NUMPY_FROMBUFFER = new Set(['numpy.core.numeric._frombuffer', 'numpy._core.numeric._frombuffer']);
const ALLOWED = new Set([...NUMPY_RECONSTRUCT, ...NUMPY_SCALAR, ...NUMPY_FROMBUFFER, 'numpy.ndarray', 'numpy.dtype', '_codecs.encode',
  'builtins.set', 'builtins.frozenset', '__builtin__.set', 'builtins.bytearray', '__builtin__.bytearray', 'collections.OrderedDict']);

export function parseDtype(descr: string, file: string): NumpyDtype {
  const m = /^([<>|=]?)([uifb])(\d+)$/.exec(descr);
  if (!m) throw new UserError(`${file}: unsupported numpy dtype "${descr}" (expected an integer, float or bool type)`);
  return { kind: m[2], itemSize: Number(m[3]), littleEndian: m[1] !== '>', descr };
}

function dictKey(k: PyValue, file: string): string | number | boolean | null {
  if (k instanceof PyBytes) return k.text;
  if (typeof k === 'bigint') return Number(k);
  if (k instanceof NumpyScalar) return k.value;
  if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean') return k;
  throw new UserError(`${file}: unsupported dictionary key in pickle (expected str or int keys)`);
}

/** A Python int, bool or numpy scalar as a JS number (NaN for anything else). */
export function numberOf(v: PyValue): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof NumpyScalar) return v.value;
  return NaN;
}

function scalarFrom(dtype: NumpyDtype, bytes: Uint8Array, file: string): NumpyScalar {
  if (bytes.length !== dtype.itemSize) throw new UserError(`${file}: numpy scalar has ${bytes.length} bytes, dtype ${dtype.descr} needs ${dtype.itemSize}`);
  return new NumpyScalar(readElement(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, dtype));
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

function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  if (bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const utf8 = new TextDecoder('utf-8');

/**
 * Parses a pickle held in `buf`. `file` names the input in error messages. Throws UserError for a
 * truncated file, an unknown opcode or a class other than numpy's array types.
 */
export function parsePickle(buf: Uint8Array, file: string): PyValue {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const stack: (PyValue | Mark)[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const truncated = (): never => { throw new UserError(`${file}: the pickle is truncated (ended at byte ${buf.length} before its STOP opcode)`); };
  const need = (n: number): void => { if (pos + n > buf.length) truncated(); };
  const u8 = (): number => { need(1); return buf[pos++]; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const u64 = (): number => { need(8); const v = Number(view.getBigUint64(pos, true)); pos += 8; return v; };
  const take = (n: number): Uint8Array => { if (n < 0) truncated(); need(n); const b = buf.subarray(pos, pos + n); pos += n; return b; };
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) truncated();
    const s = new PyBytes(buf.subarray(pos, end)).text;
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) throw new UserError(`${file}: not a valid pickle (stack underflow at byte ${pos})`);
    const v = stack.pop()!;
    if (v instanceof Mark) throw new UserError(`${file}: not a valid pickle (unexpected mark at byte ${pos})`);
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v instanceof Mark) throw new UserError(`${file}: not a valid pickle (empty stack at byte ${pos})`);
    return v;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new UserError(`${file}: not a valid pickle (no mark at byte ${pos})`);
    const items = stack.splice(m) as PyValue[];
    items.shift();
    return items;
  };
  const global = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`;
    if (!ALLOWED.has(full)) throw new UserError(`${file}: the pickle contains a ${full} object; expected only numpy arrays, lists, dicts and numbers`);
    return new PyGlobal(module, name);
  };
  const setItems = (d: PyValue, items: PyValue[]): void => {
    if (!(d instanceof Map)) throw new UserError(`${file}: not a valid pickle (SETITEMS on a non-dict at byte ${pos})`);
    for (let i = 0; i + 1 < items.length; i += 2) d.set(dictKey(items[i], file), items[i + 1]);
  };
  const reduce = (f: PyValue, argsValue: PyValue): PyValue => {
    if (!(f instanceof PyGlobal) || !(argsValue instanceof PyTuple)) throw new UserError(`${file}: not a valid pickle (REDUCE without a callable at byte ${pos})`);
    const args = argsValue.items;
    const full = `${f.module}.${f.name}`;
    if (NUMPY_RECONSTRUCT.has(full)) return new NumpyArray();
    if (full === 'numpy.dtype') {
      const d = args[0];
      const descr = d instanceof PyBytes ? d.text : String(d);
      return parseDtype(descr, file);
    }
    if (NUMPY_SCALAR.has(full)) {
      const dt = args[0];
      const raw = args[1];
      const bytes = raw instanceof PyBytes ? raw.bytes : typeof raw === 'string' ? latin1Bytes(raw) : null;
      if (!dt || !('kind' in (dt as object)) || !bytes) throw new UserError(`${file}: malformed numpy scalar`);
      return scalarFrom(dt as NumpyDtype, bytes, file);
    }
    if (NUMPY_FROMBUFFER.has(full)) {
      const [buffer, dt, shape, order] = args;
      if (!(buffer instanceof PyBytes) || !dt || !('kind' in (dt as object)) || !(shape instanceof PyTuple)) throw new UserError(`${file}: malformed numpy array (_frombuffer)`);
      const arr = new NumpyArray();
      fillArray(arr, shape, dt as NumpyDtype, order === 'F', buffer.bytes);
      return arr;
    }
    if (full === '_codecs.encode') return new PyBytes(latin1Bytes(String(args[0])));
    if (full.endsWith('.bytearray')) return args[0] instanceof PyBytes ? args[0] : new PyBytes(new Uint8Array(0));
    if (full.endsWith('set')) return Array.isArray(args[0]) ? args[0] : [];
    if (full === 'collections.OrderedDict') return new Map();
    throw new UserError(`${file}: the pickle calls ${full}; expected only numpy arrays, lists, dicts and numbers`);
  };
  /** Sets an array's layout and bytes, checking that the bytes fill the shape exactly. */
  const fillArray = (arr: NumpyArray, shape: PyTuple, dtype: NumpyDtype, fortranOrder: boolean, bytes: Uint8Array): void => {
    arr.shape = shape.items.map(numberOf);
    arr.dtype = dtype;
    arr.fortranOrder = fortranOrder;
    arr.data = bytes;
    const expected = arr.size * dtype.itemSize;
    if (bytes.length !== expected) throw new UserError(`${file}: numpy array of shape (${arr.shape.join(', ')}) has ${bytes.length} bytes, expected ${expected}`);
  };
  const build = (obj: PyValue, state: PyValue): void => {
    if (obj instanceof NumpyArray) {
      // ndarray.__setstate__((version, shape, dtype, is_fortran, data))
      const items = state instanceof PyTuple ? state.items : [];
      const s = items.length === 5 ? items.slice(1) : items;
      const [shape, dtype, fortran, data] = s;
      if (!(shape instanceof PyTuple) || !dtype || !('kind' in (dtype as object))) throw new UserError(`${file}: malformed numpy array state`);
      const bytes = data instanceof PyBytes ? data.bytes : typeof data === 'string' ? latin1Bytes(data) : null;
      if (!bytes) throw new UserError(`${file}: numpy array of dtype ${(dtype as NumpyDtype).descr} stores Python objects; expected raw numbers`);
      fillArray(obj, shape, dtype as NumpyDtype, fortran === true, bytes);
      return;
    }
    if (obj && typeof obj === 'object' && 'kind' in (obj as object)) return; // dtype state (byte order, flags) is already in its descr
    if (obj instanceof Map && state instanceof Map) { for (const [k, v] of state) obj.set(k, v); return; }
    throw new UserError(`${file}: the pickle sets the state of an unsupported object`);
  };

  for (;;) {
    if (pos >= buf.length) truncated();
    const op = buf[pos++];
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: frames are contiguous in the buffer, nothing to do
      case 0x2e: { // STOP
        const v = pop();
        return v;
      }
      case 0x28: marks.push(stack.length); stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(decodeLong(take(u8()))); break; // LONG1
      case 0x8b: stack.push(decodeLong(take(i32()))); break; // LONG4
      case 0x49: { // INT (protocol 0): also encodes True/False as 01/00
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10));
        break;
      }
      case 0x4c: stack.push(Number.parseInt(line().replace(/L$/, ''), 10)); break; // LONG (protocol 0)
      case 0x46: stack.push(Number.parseFloat(line())); break; // FLOAT
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT
      case 0x54: stack.push(new PyBytes(take(i32()))); break; // BINSTRING (Python 2 str)
      case 0x55: stack.push(new PyBytes(take(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(new PyBytes(take(u32()))); break; // BINBYTES
      case 0x43: stack.push(new PyBytes(take(u8()))); break; // SHORT_BINBYTES
      case 0x8e: stack.push(new PyBytes(take(u64()))); break; // BINBYTES8
      case 0x96: stack.push(new PyBytes(take(u64()))); break; // BYTEARRAY8
      case 0x58: stack.push(utf8.decode(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8.decode(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8.decode(take(u64()))); break; // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; plain ASCII in practice)
      case 0x53: stack.push(line().replace(/^'(.*)'$|^"(.*)"$/, '$1$2')); break; // STRING (protocol 0)
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const d: PyDict = new Map(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) throw new UserError(`${file}: not a valid pickle (APPEND to a non-list)`); l.push(v); break; } // APPEND
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) throw new UserError(`${file}: not a valid pickle (APPENDS to a non-list)`);
        for (const it of items) l.push(it);
        break;
      }
      case 0x8f: stack.push([]); break; // EMPTY_SET (kept as a list)
      case 0x90: { const items = popMark(); const s = top(); if (Array.isArray(s)) s.push(...items); break; } // ADDITEMS
      case 0x91: stack.push(popMark()); break; // FROZENSET
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        stack.push(global(String(module), String(name)));
        break;
      }
      case 0x52: { const args = pop(); const f = pop(); stack.push(reduce(f, args)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(reduce(cls, args)); break; } // NEWOBJ
      case 0x62: { const state = pop(); build(top(), state); break; } // BUILD
      case 0x70: memo.set(Number.parseInt(line(), 10), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: stack.push(memoGet(memo, Number.parseInt(line(), 10), file)); break; // GET
      case 0x68: stack.push(memoGet(memo, u8(), file)); break; // BINGET
      case 0x6a: stack.push(memoGet(memo, u32(), file)); break; // LONG_BINGET
      default:
        throw new UserError(`${file}: not a pickle this reader understands (opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1})`);
    }
  }
}

function memoGet(memo: Map<number, PyValue>, key: number, file: string): PyValue {
  if (!memo.has(key)) throw new UserError(`${file}: not a valid pickle (memo entry ${key} missing)`);
  return memo.get(key)!;
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
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

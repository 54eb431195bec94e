/**
 * A small, safe pickle reader for the published dataset files: protocols 0-5 opcodes for plain data
 * (dicts, lists, tuples, numbers, str, bytes) plus numpy arrays, dtypes and scalars. Any other class in the
 * file is refused rather than executed.
 *
 * Python 2 `str` (BINSTRING, SHORT_BINSTRING) and Python 3 bytes become `PyBytes`, a view into the file's
 * buffer: a numpy array's pixels are never copied while parsing. A file too large for one buffer is parsed
 * through a window (parsePickleFile): its large byte strings become `FileRange`s, read later straight into
 * their final place.
 *
 * Callers may allow more globals (PickleOptions): the PyTorch checkpoint reader allows the few that
 * torch.save writes, and resolves persistent ids to its storages.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { UserError } from './errors.js';
import { FileRange, NumpyArray, NumpyScalar, PyBytes, PyGlobal, PyObject, PyTuple, numberOf, parseDtype, readElement, type NumpyDtype, type PyDict, type PyValue } from './py-values.js';

export interface PickleOptions {
  /** More globals to allow, by module.name, and what calling them (REDUCE, NEWOBJ) returns. */
  globals?: ReadonlyMap<string, (args: PyValue[], file: string) => PyValue>;
  /** Resolves a persistent id (PERSID, BINPERSID); without it they are refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** What the file is expected to hold, for the message refusing any other global. */
  expected?: string;
}
class Mark {}
const MARK = new Mark();

const NUMPY_RECONSTRUCT = new Set(['numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct']);
const NUMPY_SCALAR = new Set(['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar']);
/** Protocol 5 pickles of numpy >= 1.16 store arrays as _frombuffer(buffer, dtype, shape, order). */
const NUMPY_FROMBUFFER = new Set(['numpy.core.numeric._frombuffer', 'numpy._core.numeric._frombuffer']);
const ALLOWED = new Set([...NUMPY_RECONSTRUCT, ...NUMPY_SCALAR, ...NUMPY_FROMBUFFER, 'numpy.ndarray', 'numpy.dtype', '_codecs.encode',
  'builtins.set', 'builtins.frozenset', '__builtin__.set', 'builtins.bytearray', '__builtin__.bytearray', 'collections.OrderedDict']);

function dictKey(k: PyValue, file: string): string | number | boolean | null {
  if (k instanceof PyBytes) return k.text;
  if (typeof k === 'bigint') return Number(k);
  if (k instanceof NumpyScalar) return k.value;
  if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean') return k;
  throw new UserError(`${file}: unsupported dictionary key in pickle (expected str or int keys)`);
}

function scalarFrom(dtype: NumpyDtype, bytes: Uint8Array, file: string): NumpyScalar {
  if (bytes.length !== dtype.itemSize) throw new UserError(`${file}: numpy scalar has ${bytes.length} bytes, dtype ${dtype.descr} needs ${dtype.itemSize}`);
  return new NumpyScalar(readElement(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, dtype));
}

function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  if (bytes[bytes.length - 1] & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const utf8 = new TextDecoder('utf-8');

/** Where the parser reads from: the whole file in memory, or a window onto an open file. */
interface ByteSource {
  buf: Uint8Array;
  /** Offset in the input of buf[0]. */
  base: number;
  /** Bytes in the input. */
  total: number;
  /** Makes [pos, pos + n) available in buf (moving the window); only for a file. */
  refill?: (pos: number, n: number) => void;
  /** Byte strings this long or longer are left in the file as FileRanges (file sources only). */
  deferBytes?: number;
}

/**
 * Parses a pickle held in `buf` (from byte `start`). `file` names the input in error messages. Throws UserError
 * for a truncated file, an unknown opcode or a class other than numpy's array types (and `opts.globals`).
 */
export function parsePickle(buf: Uint8Array, file: string, opts: PickleOptions = {}): PyValue {
  return parsePickleAt(buf, 0, file, opts).value;
}

/** parsePickle from byte `start`; also returns the offset after the STOP opcode (files of several pickles). */
export function parsePickleAt(buf: Uint8Array, start: number, file: string, opts: PickleOptions = {}): { value: PyValue; end: number } {
  return parseSource({ buf, base: 0, total: buf.length }, start, file, opts);
}

/** Default window of a file parse, and the size from which byte strings stay in the file. */
const WINDOW_BYTES = 64 * 2 ** 20;

/**
 * Parses a pickle file through a window of at most `windowBytes`, leaving byte strings of half the window or
 * more in the file (as FileRanges; numpy arrays get `range` instead of `data`): for files too large for one buffer.
 */
export function parsePickleFile(file: string, opts: PickleOptions & { windowBytes?: number } = {}): PyValue {
  const fd = openSync(file, 'r');
  try {
    const total = fstatSync(fd).size;
    const windowBytes = Math.max(64, opts.windowBytes ?? WINDOW_BYTES);
    const src: ByteSource = { buf: new Uint8Array(0), base: 0, total, deferBytes: Math.max(1, windowBytes >> 1) };
    src.refill = (pos: number, n: number): void => {
      const length = Math.min(total - pos, Math.max(windowBytes, n));
      const buf = src.buf.length >= length ? src.buf.subarray(0, length) : new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const got = readSync(fd, buf, done, length - done, pos + done);
        if (got === 0) break;
        done += got;
      }
      src.buf = buf.subarray(0, done);
      src.base = pos;
    };
    return parseSource(src, 0, file, opts).value;
  } finally {
    closeSync(fd);
  }
}

function parseSource(src: ByteSource, start: number, file: string, opts: PickleOptions): { value: PyValue; end: number } {
  const expected = opts.expected ?? 'only numpy arrays, lists, dicts and numbers';
  const orderedDicts = new WeakSet<PyDict>();
  let buf = src.buf;
  let view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let base = src.base;
  let pos = start;
  const stack: (PyValue | Mark)[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const truncated = (): never => { throw new UserError(`${file}: the pickle is truncated (ended at byte ${src.total} before its STOP opcode)`); };
  const need = (n: number): void => {
    if (pos + n <= base + buf.length) return;
    if (pos + n > src.total || !src.refill) truncated();
    src.refill!(pos, n);
    buf = src.buf; base = src.base;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  };
  const u8 = (): number => { need(1); return buf[pos++ - base]; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos - base, true); pos += 2; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos - base, true); pos += 4; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos - base, true); pos += 4; return v; };
  const u64 = (): number => { need(8); const v = Number(view.getBigUint64(pos - base, true)); pos += 8; return v; };
  const f64 = (): number => { need(8); const v = view.getFloat64(pos - base, false); pos += 8; return v; };
  /** n bytes: a view of the input in memory; from a file, a copy (the window moves) or a FileRange. */
  const take = (n: number): Uint8Array => {
    if (n < 0) truncated();
    need(n);
    const b = buf.subarray(pos - base, pos - base + n);
    pos += n;
    return src.refill ? b.slice() : b;
  };
  const bytesValue = (n: number): PyBytes | FileRange => {
    if (src.deferBytes !== undefined && n >= src.deferBytes) {
      if (n < 0 || pos + n > src.total) truncated();
      const r = new FileRange(pos, n);
      pos += n;
      return r;
    }
    return new PyBytes(take(n));
  };
  const line = (): string => {
    for (let want = 256; ; want *= 2) {
      need(Math.min(want, src.total - pos));
      const end = buf.indexOf(0x0a, pos - base);
      if (end >= 0) {
        const s = new PyBytes(buf.subarray(pos - base, end)).text;
        pos = base + end + 1;
        return s;
      }
      if (pos + want >= src.total) truncated();
    }
  };
  const persistent = (pid: PyValue): PyValue => {
    if (!opts.persistentLoad) throw new UserError(`${file}: the pickle refers to external objects (persistent ids); expected ${expected}`);
    return opts.persistentLoad(pid);
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
    if (!ALLOWED.has(full) && !opts.globals?.has(full)) throw new UserError(`${file}: the pickle contains a ${full} object; expected ${expected}`);
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
      if (!(buffer instanceof PyBytes || buffer instanceof FileRange) || !dt || !('kind' in (dt as object)) || !(shape instanceof PyTuple)) throw new UserError(`${file}: malformed numpy array (_frombuffer)`);
      const arr = new NumpyArray();
      fillArray(arr, shape, dt as NumpyDtype, order === 'F', buffer instanceof PyBytes ? buffer.bytes : buffer);
      return arr;
    }
    if (full === '_codecs.encode') return new PyBytes(latin1Bytes(String(args[0])));
    if (full.endsWith('.bytearray')) return args[0] instanceof PyBytes ? args[0] : new PyBytes(new Uint8Array(0));
    if (full.endsWith('set')) return Array.isArray(args[0]) ? args[0] : [];
    if (full === 'collections.OrderedDict') { const d: PyDict = new Map(); orderedDicts.add(d); return d; }
    const own = opts.globals?.get(full);
    if (own) return own(args, file);
    throw new UserError(`${file}: the pickle calls ${full}; expected ${expected}`);
  };
  /** Sets an array's layout and bytes, checking that the bytes fill the shape exactly. */
  const fillArray = (arr: NumpyArray, shape: PyTuple, dtype: NumpyDtype, fortranOrder: boolean, bytes: Uint8Array | FileRange): void => {
    arr.shape = shape.items.map(numberOf);
    if (arr.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new UserError(`${file}: numpy array of shape (${shape.items.map(String).join(', ')}); dimensions must be whole numbers, 0 or more`);
    arr.dtype = dtype;
    arr.fortranOrder = fortranOrder;
    if (bytes instanceof FileRange) arr.range = bytes;
    else arr.data = bytes;
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
      const bytes = data instanceof PyBytes ? data.bytes : data instanceof FileRange ? data : typeof data === 'string' ? latin1Bytes(data) : null;
      if (!bytes) throw new UserError(`${file}: numpy array of dtype ${(dtype as NumpyDtype).descr} stores Python objects; expected raw numbers`);
      fillArray(obj, shape, dtype as NumpyDtype, fortran === true, bytes);
      return;
    }
    if (obj && typeof obj === 'object' && 'kind' in (obj as object)) return; // dtype state (byte order, flags) is already in its descr
    // An OrderedDict's state is its attributes (a state_dict's _metadata), not items.
    if (obj instanceof Map && orderedDicts.has(obj)) return;
    if (obj instanceof Map && state instanceof Map) { for (const [k, v] of state) obj.set(k, v); return; }
    if (obj instanceof PyObject) return;
    throw new UserError(`${file}: the pickle sets the state of an unsupported object`);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: frames are contiguous in the buffer, nothing to do
      case 0x2e: return { value: pop(), end: pos }; // STOP
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
      case 0x47: stack.push(f64()); break; // BINFLOAT
      case 0x54: stack.push(bytesValue(i32())); break; // BINSTRING (Python 2 str)
      case 0x55: stack.push(bytesValue(u8())); break; // SHORT_BINSTRING
      case 0x42: stack.push(bytesValue(u32())); break; // BINBYTES
      case 0x43: stack.push(bytesValue(u8())); break; // SHORT_BINBYTES
      case 0x8e: stack.push(bytesValue(u64())); break; // BINBYTES8
      case 0x96: stack.push(bytesValue(u64())); break; // BYTEARRAY8
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
      case 0x90: { const items = popMark(); const s = top(); if (Array.isArray(s)) for (const it of items) s.push(it); break; } // ADDITEMS
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
      case 0x51: stack.push(persistent(pop())); break; // BINPERSID
      case 0x50: stack.push(persistent(line())); break; // PERSID
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


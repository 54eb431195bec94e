/**
 * Writes dataset pickles the way Python 2 + numpy wrote the published files (protocol 2, the array's bytes
 * as a BINSTRING), for tests and benchmarks that need files of a given size or with a given defect.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export interface PickleArray { shape: number[]; descr: string; bytes: Uint8Array }

class Writer {
  parts: Uint8Array[] = [];
  byte(...b: number[]): void { this.parts.push(Uint8Array.from(b)); }
  raw(b: Uint8Array): void { this.parts.push(b); }
  int(n: number): void {
    if (n >= 0 && n < 256) this.byte(0x4b, n);
    else if (n >= 0 && n < 65536) this.byte(0x4d, n & 0xff, n >> 8);
    else { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(n, 1); this.raw(b); }
  }
  unicode(s: string): void {
    const body = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5); head[0] = 0x58; head.writeUInt32LE(body.length, 1);
    this.raw(head); this.raw(body);
  }
  binstring(b: Uint8Array): void {
    if (b.length < 256) { this.byte(0x55, b.length); this.raw(b); return; }
    const head = Buffer.alloc(5); head[0] = 0x54; head.writeInt32LE(b.length, 1);
    this.raw(head); this.raw(b);
  }
  global(module: string, name: string): void { this.raw(Buffer.from(`c${module}\n${name}\n`, 'latin1')); }
  array(a: PickleArray): void {
    this.global('numpy.core.multiarray', '_reconstruct');
    this.global('numpy', 'ndarray');
    this.int(0); this.byte(0x85); // (0,)
    this.binstring(Buffer.from('b', 'latin1'));
    this.byte(0x87, 0x52); // TUPLE3, REDUCE
    this.byte(0x28); this.int(1);
    this.byte(0x28); for (const d of a.shape) this.int(d); this.byte(0x74); // shape tuple
    this.global('numpy', 'dtype');
    this.unicode(a.descr.replace(/^[<>|]/, '')); this.byte(0x89, 0x88, 0x87, 0x52); // dtype(descr, False, True)
    this.byte(0x28); this.int(3); this.unicode(a.descr.startsWith('>') ? '>' : a.descr.endsWith('1') ? '|' : '<');
    this.byte(0x4e, 0x4e, 0x4e); this.int(-1); this.int(-1); this.int(0); this.byte(0x74, 0x62); // dtype state, BUILD
    this.byte(0x89); this.binstring(a.bytes); this.byte(0x74, 0x62); // (1, shape, dtype, False, bytes) BUILD
  }
}

export type PickleValue = PickleArray | number[] | string | number | { [key: string]: number };

/** A protocol-2 pickle of a dict whose values are numpy arrays, int lists, strings, ints or str->int dicts. */
export function pickleDict(entries: Record<string, PickleValue>): Uint8Array {
  return Buffer.concat(pickleDictParts(entries));
}

/** pickleDict as the pieces to write one after another (large arrays are not copied into one buffer). */
export function pickleDictParts(entries: Record<string, PickleValue>): Uint8Array[] {
  const w = new Writer();
  w.byte(0x80, 0x02, 0x7d, 0x28); // PROTO 2, EMPTY_DICT, MARK
  for (const [key, value] of Object.entries(entries)) {
    w.unicode(key);
    if (Array.isArray(value)) {
      w.byte(0x5d, 0x28); for (const v of value) w.int(v); w.byte(0x65); // EMPTY_LIST MARK ... APPENDS
    } else if (typeof value === 'string') w.unicode(value);
    else if (typeof value === 'number') w.int(value);
    else if ('bytes' in value) w.array(value as PickleArray);
    else {
      w.byte(0x7d, 0x28); for (const [k, v] of Object.entries(value)) { w.binstring(Buffer.from(k, 'latin1')); w.int(v as number); } w.byte(0x75);
    }
  }
  w.byte(0x75, 0x2e); // SETITEMS, STOP
  return w.parts;
}

/** Writes a CIFAR-FS-style split: 'data' uint8 [N, size, size, 3] and 'labels'. */
export function writeDatasetPickle(file: string, pixels: Uint8Array, size: number, labels: number[], extra: Record<string, PickleValue> = {}): void {
  const n = pixels.length / (size * size * 3);
  const fd = openSync(file, 'w');
  try {
    for (const part of pickleDictParts({ data: { shape: [n, size, size, 3], descr: '|u1', bytes: pixels }, labels, ...extra })) writeSync(fd, part);
  } finally {
    closeSync(fd);
  }
}

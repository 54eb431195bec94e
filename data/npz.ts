/**
 * Reads arrays from numpy .npz archives (a zip of .npy files, stored or deflated, zip64 included; see zip.ts for
 * the CRC and inflation checks) and parses .npy headers. Only the entry asked for is read from disk; a stored
 * entry is read straight into row-aligned chunks (no buffer holds the whole array, and no extra copy).
 */
import { crc32 } from 'node:zlib';
import { UserError } from './errors.js';
import { parseDtype, type NumpyDtype } from './py-values.js';
import { readAt, ZipArchive } from './zip.js';

export interface NpyHeader { dtype: NumpyDtype; shape: number[]; fortranOrder: boolean; /** Bytes before the data. */ dataOffset: number }
export interface NpyArray { dtype: NumpyDtype; shape: number[]; fortranOrder: boolean; data: Uint8Array }

/** Parses the header of a .npy file; `buf` holds at least the header. */
export function parseNpyHeader(buf: Uint8Array, file: string): NpyHeader {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.length < 10 || magic.some((b, i) => buf[i] !== b)) throw new UserError(`${file}: not a .npy array (bad magic bytes)`);
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLength > buf.length) throw new UserError(`${file}: the .npy header is truncated`);
  const header = new TextDecoder('latin1').decode(buf.subarray(start, start + headerLength));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new UserError(`${file}: malformed .npy header`);
  const dtype = parseDtype(descr, file);
  const parts = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const shape = parts.map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new UserError(`${file}: the .npy header has shape (${parts.join(', ')}); dimensions must be whole numbers, 0 or more`);
  return { dtype, shape, fortranOrder: fortran === 'True', dataOffset: start + headerLength };
}

function dataBytes(h: NpyHeader): number {
  return h.shape.reduce((a, b) => a * b, 1) * h.dtype.itemSize;
}

/** Parses a .npy file held in memory; `data` is a view into `buf` after the header. */
export function parseNpy(buf: Uint8Array, file: string): NpyArray {
  const h = parseNpyHeader(buf, file);
  const data = buf.subarray(h.dataOffset);
  const expected = dataBytes(h);
  if (data.length !== expected) {
    throw new UserError(`${file}: array of shape (${h.shape.join(', ')}) and dtype ${h.dtype.descr} needs ${expected} bytes, the file has ${data.length}`);
  }
  return { dtype: h.dtype, shape: h.shape, fortranOrder: h.fortranOrder, data };
}

export interface NpzRowsOptions {
  /** Rows (items along the first axis) per chunk: each chunk holds whole rows. Default: everything in one chunk. */
  rowsPerChunk?: (rowBytes: number) => number;
  /** Called with the header before any data is read (to refuse a wrong dtype or shape early). */
  check?: (header: NpyHeader) => void;
}

/** Reads the array `key` of an .npz archive, its data split into chunks of whole rows. */
export function readNpzRows(file: string, key: string, opts: NpzRowsOptions = {}): { header: NpyHeader; chunks: Uint8Array[]; rowBytes: number } {
  const zip = ZipArchive.open(file, 'an .npz (zip) archive');
  try {
    const entry = zip.find(`${key}.npy`) ?? zip.find(key);
    if (!entry) throw new UserError(`${file}: no array "${key}" in the archive (it holds ${zip.entries.map((e) => e.name.replace(/\.npy$/, '')).join(', ') || 'nothing'})`);
    const what = `${file}:${entry.name}`;
    const rowsOf = (h: NpyHeader, bytes: number): number => {
      const rowBytes = h.shape.length === 0 ? bytes : bytes / Math.max(1, h.shape[0]);
      return rowBytes;
    };
    if (entry.method !== 0) {
      // Deflated: inflated whole (capped at its declared size), then cut into views.
      const npy = parseNpy(zip.read(entry), what);
      const header = { ...npy, dataOffset: 0 };
      opts.check?.(header);
      const rowBytes = rowsOf(header, npy.data.length);
      return { header, chunks: cut(npy.data, rowBytes, opts), rowBytes };
    }
    const start = zip.dataStart(entry);
    const probe = readAt(zip.fd, start, Math.min(entry.size, 65536 + 12), file);
    const header = parseNpyHeader(probe, what);
    const expected = dataBytes(header);
    if (entry.size - header.dataOffset !== expected) {
      throw new UserError(`${what}: array of shape (${header.shape.join(', ')}) and dtype ${header.dtype.descr} needs ${expected} bytes, the entry has ${entry.size - header.dataOffset}`);
    }
    opts.check?.(header);
    const rowBytes = rowsOf(header, expected);
    const rows = header.shape.length === 0 ? 1 : header.shape[0];
    const per = rowBytes === 0 ? Math.max(1, rows) : Math.max(1, Math.min(rows, opts.rowsPerChunk?.(rowBytes) ?? rows));
    const chunks: Uint8Array[] = [];
    let crc = crc32(probe.subarray(0, header.dataOffset));
    let at = start + header.dataOffset;
    for (let done = 0; done < rows || chunks.length === 0; done += per) {
      const n = Math.min(per, rows - done) * rowBytes;
      const chunk = readAt(zip.fd, at, n, file, new Uint8Array(n));
      crc = crc32(chunk, crc);
      chunks.push(chunk);
      at += n;
      if (rows === 0) break;
    }
    zip.checkCrc(entry, crc);
    return { header, chunks, rowBytes };
  } finally {
    zip.close();
  }
}

function cut(data: Uint8Array, rowBytes: number, opts: NpzRowsOptions): Uint8Array[] {
  if (!opts.rowsPerChunk || rowBytes === 0) return [data];
  const step = Math.max(1, opts.rowsPerChunk(rowBytes)) * rowBytes;
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += step) out.push(data.subarray(at, Math.min(data.length, at + step)));
  return out.length > 0 ? out : [data];
}

/** Reads the array `key` (the entry `key`.npy) of an .npz archive into one buffer. */
export function readNpzArray(file: string, key: string): NpyArray {
  const { header, chunks } = readNpzRows(file, key);
  const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  return { dtype: header.dtype, shape: header.shape, fortranOrder: header.fortranOrder, data };
}

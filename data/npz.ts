/**
 * Reads arrays from numpy .npz archives (a zip of .npy files, stored or deflated, zip64 included) and
 * parses .npy headers. Only the entry asked for is read from disk.
 */
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { UserError } from './errors.js';
import { parseDtype, type NumpyDtype } from './pickle.js';

export interface NpyArray { dtype: NumpyDtype; shape: number[]; fortranOrder: boolean; data: Uint8Array }

interface ZipEntry { name: string; method: number; compressedSize: number; size: number; localHeaderOffset: number }

function readAt(fd: number, offset: number, length: number, file: string): Buffer {
  const out = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, offset + done);
    if (n === 0) throw new UserError(`${file}: the archive is truncated (wanted ${length} bytes at offset ${offset})`);
    done += n;
  }
  return out;
}

function listEntries(fd: number, fileSize: number, file: string): ZipEntry[] {
  // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
  const tailLength = Math.min(fileSize, 65557);
  const tail = readAt(fd, fileSize - tailLength, tailLength, file);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw new UserError(`${file}: not an .npz (zip) archive, or it is truncated`);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    // zip64: locator just before the EOCD points at the zip64 EOCD record
    const locator = eocd - 20;
    if (locator < 0 || tail.readUInt32LE(locator) !== 0x07064b50) throw new UserError(`${file}: malformed zip64 archive`);
    const z64 = readAt(fd, Number(tail.readBigUInt64LE(locator + 8)), 56, file);
    if (z64.readUInt32LE(0) !== 0x06064b50) throw new UserError(`${file}: malformed zip64 archive`);
    count = Number(z64.readBigUInt64LE(32));
    cdSize = Number(z64.readBigUInt64LE(40));
    cdOffset = Number(z64.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > fileSize) throw new UserError(`${file}: the archive is truncated (central directory past the end)`);
  const cd = readAt(fd, cdOffset, cdSize, file);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new UserError(`${file}: malformed zip central directory`);
    const method = cd.readUInt16LE(p + 10);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size = cd.readUInt32LE(p + 24);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    let localHeaderOffset = cd.readUInt32LE(p + 42);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
    // zip64 extended information: the 0xffffffff fields appear in order in extra field 0x0001
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) { size = Number(cd.readBigUInt64LE(q)); q += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = Number(cd.readBigUInt64LE(q)); q += 8; }
        if (localHeaderOffset === 0xffffffff) { localHeaderOffset = Number(cd.readBigUInt64LE(q)); q += 8; }
      }
      e += 4 + len;
    }
    entries.push({ name, method, compressedSize, size, localHeaderOffset });
    p = extraEnd + commentLength;
  }
  return entries;
}

/** Parses a .npy file held in memory; `data` is a view into `buf` after the header. */
export function parseNpy(buf: Uint8Array, file: string): NpyArray {
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
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const size = shape.reduce((a, b) => a * b, 1);
  const data = buf.subarray(start + headerLength);
  if (data.length !== size * dtype.itemSize) {
    throw new UserError(`${file}: array of shape (${shape.join(', ')}) and dtype ${descr} needs ${size * dtype.itemSize} bytes, the file has ${data.length}`);
  }
  return { dtype, shape, fortranOrder: fortran === 'True', data };
}

/** Reads the array `key` (the entry `key`.npy) from an .npz archive. */
export function readNpzArray(file: string, key: string): NpyArray {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new UserError(`${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? 'error'}); expected a numpy .npz archive`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    const entries = listEntries(fd, fileSize, file);
    const entry = entries.find((e) => e.name === `${key}.npy` || e.name === key);
    if (!entry) throw new UserError(`${file}: no array "${key}" in the archive (it holds ${entries.map((e) => e.name.replace(/\.npy$/, '')).join(', ') || 'nothing'})`);
    const local = readAt(fd, entry.localHeaderOffset, 30, file);
    if (local.readUInt32LE(0) !== 0x04034b50) throw new UserError(`${file}: malformed zip entry "${entry.name}"`);
    const dataStart = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (dataStart + entry.compressedSize > fileSize) throw new UserError(`${file}: the archive is truncated inside "${entry.name}"`);
    if (Math.max(entry.size, entry.compressedSize) > bufferConstants.MAX_LENGTH) {
      throw new UserError(`${file}: entry "${entry.name}" holds ${(entry.size / 2 ** 30).toFixed(1)} GiB, more than this runtime can hold in one buffer (${(bufferConstants.MAX_LENGTH / 2 ** 30).toFixed(1)} GiB)`);
    }
    const raw = readAt(fd, dataStart, entry.compressedSize, file);
    let npy: Uint8Array;
    if (entry.method === 0) npy = raw;
    else if (entry.method === 8) {
      try {
        npy = inflateRawSync(raw);
      } catch {
        throw new UserError(`${file}: entry "${entry.name}" does not inflate (corrupt archive)`);
      }
    } else throw new UserError(`${file}: entry "${entry.name}" uses zip compression method ${entry.method}; expected stored or deflated`);
    if (npy.length !== entry.size) throw new UserError(`${file}: entry "${entry.name}" has ${npy.length} bytes, the archive says ${entry.size}`);
    return parseNpy(npy, `${file}:${entry.name}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads zip archives (numpy's .npz, PyTorch's .pth): the central directory (zip64 included), and entries
 * stored or deflated. Every entry's bytes are checked against its CRC-32, and inflation stops at the size the
 * archive declares, so a corrupt byte or a deflate bomb is refused instead of loaded.
 */
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32, inflateRawSync } from 'node:zlib';
import { UserError } from './errors.js';

export interface ZipEntry { name: string; method: number; compressedSize: number; size: number; crc: number; localHeaderOffset: number }

/** Deflate cannot expand data by more than about 1032:1; a declared size beyond that is a lie. */
const MAX_DEFLATE_RATIO = 1032;

export function readAt(fd: number, offset: number, length: number, file: string, into?: Uint8Array): Uint8Array {
  const out = into ?? Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, offset + done);
    if (n === 0) throw new UserError(`${file}: the archive is truncated (wanted ${length} bytes at offset ${offset})`);
    done += n;
  }
  return out;
}

function listEntries(fd: number, fileSize: number, file: string, kind: string): ZipEntry[] {
  // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
  const tailLength = Math.min(fileSize, 65557);
  const tail = Buffer.from(readAt(fd, fileSize - tailLength, tailLength, file));
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw new UserError(`${file}: not ${kind}, or it is truncated`);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    // zip64: locator just before the EOCD points at the zip64 EOCD record
    const locator = eocd - 20;
    if (locator < 0 || tail.readUInt32LE(locator) !== 0x07064b50) throw new UserError(`${file}: malformed zip64 archive`);
    const z64 = Buffer.from(readAt(fd, Number(tail.readBigUInt64LE(locator + 8)), 56, file));
    if (z64.readUInt32LE(0) !== 0x06064b50) throw new UserError(`${file}: malformed zip64 archive`);
    count = Number(z64.readBigUInt64LE(32));
    cdSize = Number(z64.readBigUInt64LE(40));
    cdOffset = Number(z64.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > fileSize) throw new UserError(`${file}: the archive is truncated (central directory past the end)`);
  const cd = Buffer.from(readAt(fd, cdOffset, cdSize, file));
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw new UserError(`${file}: malformed zip central directory`);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
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
    entries.push({ name, method, compressedSize, size, crc, localHeaderOffset });
    p = extraEnd + commentLength;
  }
  return entries;
}

/** An open zip archive; `close` releases the file. */
export class ZipArchive {
  private constructor(readonly file: string, readonly fd: number, readonly fileSize: number, readonly entries: ZipEntry[]) {}

  /** `kind` names what the file should be ("an .npz (zip) archive") in messages. */
  static open(file: string, kind: string): ZipArchive {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      throw new UserError(`${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? 'error'}); expected ${kind}`);
    }
    try {
      const fileSize = fstatSync(fd).size;
      return new ZipArchive(file, fd, fileSize, listEntries(fd, fileSize, file, kind));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  close(): void { closeSync(this.fd); }

  find(name: string): ZipEntry | undefined { return this.entries.find((e) => e.name === name); }

  /** Offset in the file of the entry's (possibly compressed) bytes. */
  dataStart(entry: ZipEntry): number {
    const local = Buffer.from(readAt(this.fd, entry.localHeaderOffset, 30, this.file));
    if (local.readUInt32LE(0) !== 0x04034b50) throw new UserError(`${this.file}: malformed zip entry "${entry.name}"`);
    const start = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (start + entry.compressedSize > this.fileSize) throw new UserError(`${this.file}: the archive is truncated inside "${entry.name}"`);
    return start;
  }

  /** The entry's bytes in one buffer, CRC-checked. */
  read(entry: ZipEntry): Uint8Array {
    if (entry.method !== 0 && entry.method !== 8) throw new UserError(`${this.file}: entry "${entry.name}" uses zip compression method ${entry.method}; expected stored or deflated`);
    if (Math.max(entry.size, entry.compressedSize) > bufferConstants.MAX_LENGTH) {
      throw new UserError(`${this.file}: entry "${entry.name}" holds ${(entry.size / 2 ** 30).toFixed(1)} GiB compressed, more than this runtime can inflate in one buffer (${(bufferConstants.MAX_LENGTH / 2 ** 30).toFixed(1)} GiB); store it uncompressed (numpy.savez, not savez_compressed)`);
    }
    const raw = readAt(this.fd, this.dataStart(entry), entry.compressedSize, this.file);
    let data: Uint8Array;
    if (entry.method === 0) {
      data = raw;
      if (data.length !== entry.size) throw new UserError(`${this.file}: entry "${entry.name}" is stored with ${data.length} bytes, the archive says ${entry.size}`);
    } else {
      if (entry.size > Math.max(1, entry.compressedSize) * MAX_DEFLATE_RATIO) {
        throw new UserError(`${this.file}: entry "${entry.name}" declares ${entry.size} bytes from ${entry.compressedSize} compressed, more than deflate can produce (corrupt archive)`);
      }
      try {
        // Inflation stops one byte past the declared size: a bomb is cut off there, not after gigabytes.
        data = inflateRawSync(raw, { maxOutputLength: entry.size + 1 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new UserError(`${this.file}: entry "${entry.name}" inflates past the ${entry.size} bytes the archive declares (corrupt archive or deflate bomb)`);
        throw new UserError(`${this.file}: entry "${entry.name}" does not inflate (corrupt archive)`);
      }
      if (data.length !== entry.size) throw new UserError(`${this.file}: entry "${entry.name}" inflates to ${data.length} bytes, the archive says ${entry.size}`);
    }
    this.checkCrc(entry, crc32(data));
    return data;
  }

  /** Fails unless `actual` is the entry's declared CRC-32. */
  checkCrc(entry: ZipEntry, actual: number): void {
    if ((actual >>> 0) !== (entry.crc >>> 0)) {
      throw new UserError(`${this.file}: entry "${entry.name}" fails its CRC-32 check (stored ${hex(entry.crc)}, computed ${hex(actual)}): the file is corrupt`);
    }
  }
}

const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

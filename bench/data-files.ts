/**
 * Full-size synthetic dataset files for the data benchmark, written without holding them in memory:
 * CIFAR-FS and miniImageNet train pickles (protocol 2, as Python 2 wrote them) and tieredImageNet's train
 * npz (a stored zip64 entry) with its labels pickle. Pixels repeat a seeded block; labels cycle over the classes.
 */
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Rng } from '../data/rng.js';
import { pickleDict, writeDatasetPickle } from '../test/helpers/pickle-writer.js';

export interface FullSizeSet { name: 'CIFAR-FS' | 'miniImageNet' | 'tieredImageNet'; split: string; count: number; size: number; classes: number }

/** The published train splits' sizes. */
export const FULL_SIZE: FullSizeSet[] = [
  { name: 'CIFAR-FS', split: 'train', count: 38_400, size: 32, classes: 64 },
  { name: 'miniImageNet', split: 'train', count: 38_400, size: 84, classes: 64 },
  { name: 'tieredImageNet', split: 'train', count: 448_695, size: 84, classes: 351 },
];

export const fileBytes = (s: FullSizeSet): number => s.count * s.size * s.size * 3;

function seededBlock(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const rng = new Rng(seed);
  for (let i = 0; i < bytes; i += 4) {
    const w = rng.nextUint32();
    out[i] = w & 255; out[i + 1] = (w >>> 8) & 255; out[i + 2] = (w >>> 16) & 255; out[i + 3] = w >>> 24;
  }
  return out;
}

const labelsOf = (s: FullSizeSet): number[] => Array.from({ length: s.count }, (_, i) => Math.floor((i * s.classes) / s.count));

function npyHeader(shape: number[]): Buffer {
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1')]);
}

/** A zip64 archive with one stored entry `images.npy`, streamed from repeated blocks. */
function writeNpz64(file: string, shape: number[], block: Uint8Array, total: number): void {
  const name = Buffer.from('images.npy');
  const npy = npyHeader(shape);
  const size = npy.length + total;
  const zip64Extra = (withOffset: boolean, offset = 0): Buffer => {
    const b = Buffer.alloc(4 + 16 + (withOffset ? 8 : 0));
    b.writeUInt16LE(0x0001, 0); b.writeUInt16LE(b.length - 4, 2);
    b.writeBigUInt64LE(BigInt(size), 4); b.writeBigUInt64LE(BigInt(size), 12);
    if (withOffset) b.writeBigUInt64LE(BigInt(offset), 20);
    return b;
  };
  const fd = openSync(file, 'w');
  try {
    const localExtra = zip64Extra(false);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(45, 4);
    local.writeUInt32LE(0xffffffff, 18); local.writeUInt32LE(0xffffffff, 22);
    local.writeUInt16LE(name.length, 26); local.writeUInt16LE(localExtra.length, 28);
    writeSync(fd, local); writeSync(fd, name); writeSync(fd, localExtra); writeSync(fd, npy);
    let crc = crc32(npy);
    for (let done = 0; done < total; done += block.length) {
      const part = block.subarray(0, Math.min(block.length, total - done));
      crc = crc32(part, crc);
      writeSync(fd, part);
    }
    const cdOffset = 30 + name.length + localExtra.length + size;
    const cdExtra = zip64Extra(true, 0);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0); cd.writeUInt16LE(45, 4); cd.writeUInt16LE(45, 6);
    cd.writeUInt32LE(crc >>> 0, 16); cd.writeUInt32LE(0xffffffff, 20); cd.writeUInt32LE(0xffffffff, 24);
    cd.writeUInt16LE(name.length, 28); cd.writeUInt16LE(cdExtra.length, 30); cd.writeUInt32LE(0xffffffff, 42);
    const cdBytes = Buffer.concat([cd, name, cdExtra]);
    const eocd64 = Buffer.alloc(56);
    eocd64.writeUInt32LE(0x06064b50, 0); eocd64.writeBigUInt64LE(44n, 4); eocd64.writeUInt16LE(45, 12); eocd64.writeUInt16LE(45, 14);
    eocd64.writeBigUInt64LE(1n, 24); eocd64.writeBigUInt64LE(1n, 32);
    eocd64.writeBigUInt64LE(BigInt(cdBytes.length), 40); eocd64.writeBigUInt64LE(BigInt(cdOffset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0); locator.writeBigUInt64LE(BigInt(cdOffset + cdBytes.length), 8); locator.writeUInt32LE(1, 16);
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(0xffff, 8); eocd.writeUInt16LE(0xffff, 10);
    eocd.writeUInt32LE(0xffffffff, 12); eocd.writeUInt32LE(0xffffffff, 16);
    writeSync(fd, Buffer.concat([cdBytes, eocd64, locator, eocd]));
    const crcBytes = Buffer.alloc(4);
    crcBytes.writeUInt32LE(crc >>> 0, 0);
    writeSync(fd, crcBytes, 0, 4, 14); // the local header's CRC, known once the data is written
  } finally {
    closeSync(fd);
  }
}

/** Writes the set's train files under `root/<name>/` in the published layout. */
export function writeFullSize(s: FullSizeSet, root: string): string {
  const dir = join(root, s.name);
  const imageBytes = s.size * s.size * 3;
  if (s.name === 'tieredImageNet') {
    const block = seededBlock(imageBytes * 4096, 7);
    writeNpz64(join(dir, `${s.split}_images.npz`), [s.count, s.size, s.size, 3], block, fileBytes(s));
    writeFileSync(join(dir, `${s.split}_labels.pkl`), pickleDict({ labels: labelsOf(s) }));
  } else {
    const file = s.name === 'CIFAR-FS' ? `${s.split}.pickle` : 'miniImageNet_category_split_train_phase_train.pickle';
    writeDatasetPickle(join(dir, file), seededBlock(fileBytes(s), 7), s.size, labelsOf(s));
  }
  return dir;
}

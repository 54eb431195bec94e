/**
 * A minimal safetensors codec for F32 tensors (https://github.com/huggingface/safetensors):
 *   8 bytes: header length N (unsigned 64-bit little-endian)
 *   N bytes: UTF-8 JSON { "__metadata__": {string: string}, "<name>": { dtype, shape, data_offsets: [begin, end] } }
 *            padded with spaces so that the data section starts on an 8-byte boundary
 *   rest:    the tensors' raw little-endian bytes, back to back in header order, offsets relative to this section
 *
 * Plain TypeScript with no TensorFlow.js import, so readers of checkpoints do not need TensorFlow.js.
 */

export interface F32Tensor {
  data: Float32Array;
  shape: number[];
}

export interface SafetensorsContents {
  metadata: Record<string, string>;
  tensors: Map<string, F32Tensor>;
}

const littleEndianHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Serialises tensors (in the map's order) and string metadata into one safetensors buffer. */
export function encodeSafetensors(tensors: Map<string, F32Tensor>, metadata: Record<string, string>): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new Error('a tensor may not be called __metadata__');
    const count = elementCount(t.shape);
    if (count !== t.data.length) throw new Error(`tensor ${name}: shape [${t.shape}] holds ${count} values, data has ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + count * 4] };
    offset += count * 4;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((8 + jsonBytes) % 8)) % 8);
  const headerBuf = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBuf.length + offset);
  out.writeBigUInt64LE(BigInt(headerBuf.length), 0);
  headerBuf.copy(out, 8);
  let pos = 8 + headerBuf.length;
  for (const t of tensors.values()) {
    if (littleEndianHost) {
      Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    } else {
      for (let i = 0; i < t.data.length; i++) out.writeFloatLE(t.data[i], pos + 4 * i);
    }
    pos += t.data.byteLength;
  }
  return out;
}

/**
 * Parses a safetensors buffer holding F32 tensors. Throws Error with a description of what is wrong;
 * callers turn it into a message naming the file.
 */
export function decodeSafetensors(buf: Uint8Array): SafetensorsContents {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8) throw new Error('too short to be a safetensors file');
  const headerLength = Number(b.readBigUInt64LE(0));
  if (headerLength <= 1 || 8 + headerLength > b.length) throw new Error(`header length ${headerLength} does not fit the file (${b.length} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(b.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new Error('the header is not JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new Error('the header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = b.length - dataStart;
  const metadata: Record<string, string> = {};
  const rawMeta = header.__metadata__;
  if (rawMeta !== undefined) {
    if (rawMeta === null || typeof rawMeta !== 'object') throw new Error('__metadata__ is not an object');
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') throw new Error(`__metadata__.${k} is not a string`);
      metadata[k] = v;
    }
  }
  const tensors = new Map<string, F32Tensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e.dtype !== 'F32') throw new Error(`tensor ${name} has dtype ${String(e.dtype)}, expected F32`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`tensor ${name} has no valid shape`);
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o))) throw new Error(`tensor ${name} has no valid data_offsets`);
    const [begin, end] = offsets as [number, number];
    const shape = e.shape as number[];
    if (begin < 0 || end < begin || end > dataLength || end - begin !== elementCount(shape) * 4) {
      throw new Error(`tensor ${name}: data_offsets [${begin}, ${end}] do not match shape [${shape}] within ${dataLength} data bytes`);
    }
    const data = new Float32Array(elementCount(shape));
    const start = dataStart + begin;
    if (littleEndianHost) {
      new Uint8Array(data.buffer).set(b.subarray(start, dataStart + end));
    } else {
      for (let i = 0; i < data.length; i++) data[i] = b.readFloatLE(start + 4 * i);
    }
    tensors.set(name, { data, shape: [...shape] });
  }
  return { metadata, tensors };
}

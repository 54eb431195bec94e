/** Edits of serialised ONNX models for tests: replace the metadata_props, rename a value. */
import assert from 'node:assert/strict';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80); }
  out.push(n);
  return out;
}
function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint(field * 8 + 2), ...varint(payload.length), ...payload]);
}
/** The model with its metadata_props (field 14) replaced by `props`; fields may come in any order in protobuf. */
export function withMetadata(bytes: Uint8Array, props: Record<string, string>): Buffer {
  const kept: Uint8Array[] = [];
  let pos = 0;
  const readVarint = (): number => {
    let result = 0, scale = 1;
    for (;;) { const b = bytes[pos++]!; result += (b & 0x7f) * scale; if (b < 0x80) return result; scale *= 128; }
  };
  while (pos < bytes.length) {
    const start = pos;
    const tag = readVarint();
    const wire = tag % 8;
    if (wire === 0) readVarint();
    else if (wire === 2) { const length = readVarint(); pos += length; }
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    if (Math.floor(tag / 8) !== 14) kept.push(bytes.subarray(start, pos));
  }
  const enc = new TextEncoder();
  for (const [k, v] of Object.entries(props)) {
    kept.push(lengthDelimited(14, Uint8Array.from([...lengthDelimited(1, enc.encode(k)), ...lengthDelimited(2, enc.encode(v))])));
  }
  return Buffer.concat(kept);
}
/** Replaces every occurrence of an ASCII name with another of the same length: a valid model with a renamed value. */
export function rename(bytes: Uint8Array, from: string, to: string): Buffer {
  assert.equal(from.length, to.length);
  const buffer = Buffer.from(bytes);
  const needle = Buffer.from(from);
  for (let i = buffer.indexOf(needle); i !== -1; i = buffer.indexOf(needle, i + 1)) buffer.write(to, i);
  return buffer;
}

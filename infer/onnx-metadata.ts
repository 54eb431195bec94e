/**
 * Reads only the metadata_props (field 14 of ModelProto) of ONNX bytes by walking the protobuf wire format and
 * skipping every other field, so that a large model's weights are never decoded (onnxruntime's JavaScript API does
 * not expose metadata_props). Browser-safe. proto/read.ts decodes whole models when more is needed.
 */

const MODEL_METADATA_PROPS = 14;

/** The metadata_props of a serialised ModelProto as key -> value. Throws Error on malformed bytes. */
export function readOnnxMetadataProps(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const reader = new WireReader(bytes, 0, bytes.length);
  while (!reader.done()) {
    const { field, wireType } = reader.tag();
    if (field === MODEL_METADATA_PROPS && wireType === 2) {
      const entry = reader.sub();
      let key = '', value = '';
      while (!entry.done()) {
        const t = entry.tag();
        if (t.field === 1 && t.wireType === 2) key = entry.string();
        else if (t.field === 2 && t.wireType === 2) value = entry.string();
        else entry.skip(t.wireType);
      }
      out[key] = value;
    } else {
      reader.skip(wireType);
    }
  }
  return out;
}

const utf8 = new TextDecoder('utf-8');

class WireReader {
  constructor(private readonly bytes: Uint8Array, private pos: number, private readonly end: number) {}

  done(): boolean { return this.pos >= this.end; }

  varint(): number {
    let result = 0, scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  }

  tag(): { field: number; wireType: number } {
    const t = this.varint();
    return { field: Math.floor(t / 8), wireType: t % 8 };
  }

  private length(): number {
    const len = this.varint();
    if (this.pos + len > this.end) throw new Error('length-delimited field runs past the end');
    return len;
  }

  sub(): WireReader {
    const len = this.length();
    const r = new WireReader(this.bytes, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  string(): string {
    const len = this.length();
    const s = utf8.decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0: this.varint(); return;
      case 1: this.advance(8); return;
      case 2: this.advance(this.length()); return;
      case 5: this.advance(4); return;
      default: throw new Error(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new Error('field runs past the end');
    this.pos += n;
  }
}

/**
 * Reads what feeding a graph needs from ONNX bytes without decoding its weights: the model's metadata_props
 * (where the exporter writes preprocessing) and the names, shapes and element types of the graph's inputs and
 * outputs. onnxruntime's JavaScript APIs (node and web) do not expose metadata_props, so this walks the protobuf
 * wire format directly, skipping every field it does not need (initializer data, nodes) by its length prefix.
 * Browser-safe: Node (infer/session.ts) and the page (web/) read graphs with this one reader. proto/read.ts
 * decodes whole models when more is needed.
 *
 * Field numbers are from onnx.proto: ModelProto.graph = 7, metadata_props = 14; StringStringEntryProto key = 1,
 * value = 2; GraphProto.initializer = 5, input = 11, output = 12; TensorProto.name = 8; ValueInfoProto name = 1,
 * type = 2; TypeProto.tensor_type = 1; Tensor.elem_type = 1, shape = 2; TensorShapeProto.dim = 1; Dimension
 * dim_value = 1, dim_param = 2.
 */
import type { GraphDescription, GraphValue } from '../models/preprocessing.js';

export type ValueInfo = GraphValue;
export type OnnxInfo = GraphDescription;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

interface Field {
  number: number;
  wireType: number;
  /** The varint value (wire type 0); fixed fields are not decoded because nothing here needs them. */
  varint: number;
  /** The payload of a length-delimited field (wire type 2). */
  bytes: Uint8Array | null;
}

class WireReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** Reads a varint as a JS number (exact up to 2^53, which covers every length and dimension). */
  private varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error('varint longer than 10 bytes');
  }

  next(): Field {
    const tag = this.varint();
    const number = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (number === 0) throw new Error('field number 0');
    switch (wireType) {
      case WIRE_VARINT:
        return { number, wireType, varint: this.varint(), bytes: null };
      case WIRE_FIXED64:
        this.skip(8);
        return { number, wireType, varint: 0, bytes: null };
      case WIRE_LENGTH_DELIMITED: {
        const length = this.varint();
        const start = this.pos;
        this.skip(length);
        return { number, wireType, varint: 0, bytes: this.buf.subarray(start, start + length) };
      }
      case WIRE_FIXED32:
        this.skip(4);
        return { number, wireType, varint: 0, bytes: null };
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
  }

  private skip(count: number): void {
    if (this.pos + count > this.buf.length) throw new Error('truncated field');
    this.pos += count;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

function* fields(buf: Uint8Array): Generator<Field> {
  const reader = new WireReader(buf);
  while (!reader.done()) yield reader.next();
}

function readStringPair(buf: Uint8Array): [string, string] {
  let key = '';
  let value = '';
  for (const f of fields(buf)) {
    if (f.number === 1 && f.bytes) key = utf8.decode(f.bytes);
    else if (f.number === 2 && f.bytes) value = utf8.decode(f.bytes);
  }
  return [key, value];
}

function readShape(tensorShape: Uint8Array): (number | string | null)[] {
  const dims: (number | string | null)[] = [];
  for (const dim of fields(tensorShape)) {
    if (dim.number !== 1 || !dim.bytes) continue;
    let value: number | string | null = null;
    for (const f of fields(dim.bytes)) {
      if (f.number === 1 && f.wireType === WIRE_VARINT) value = f.varint;
      else if (f.number === 2 && f.bytes) value = utf8.decode(f.bytes);
    }
    dims.push(value);
  }
  return dims;
}

function readValueInfo(buf: Uint8Array): ValueInfo {
  let name = '';
  let shape: (number | string | null)[] | null = null;
  let elemType: number | null = null;
  for (const f of fields(buf)) {
    if (f.number === 1 && f.bytes) name = utf8.decode(f.bytes);
    else if (f.number === 2 && f.bytes) {
      for (const typeField of fields(f.bytes)) {
        if (typeField.number !== 1 || !typeField.bytes) continue; // tensor_type
        for (const tensorField of fields(typeField.bytes)) {
          if (tensorField.number === 1 && tensorField.wireType === WIRE_VARINT) elemType = tensorField.varint;
          else if (tensorField.number === 2 && tensorField.bytes) shape = readShape(tensorField.bytes);
        }
      }
    }
  }
  return { name, shape, elemType };
}

function initializerName(buf: Uint8Array): string {
  for (const f of fields(buf)) if (f.number === 8 && f.bytes) return utf8.decode(f.bytes);
  return '';
}

/** The metadata_props of a serialised ModelProto as key -> value. Throws Error on malformed bytes. */
export function readOnnxMetadataProps(bytes: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fields(bytes)) {
    if (f.number === 14 && f.bytes) {
      const [key, value] = readStringPair(f.bytes);
      out[key] = value;
    }
  }
  return out;
}

/**
 * Metadata, inputs and outputs of a serialised ModelProto. Inputs that are also initializers (older exporters list
 * weights as inputs) are left out. Throws Error when the bytes are not a protobuf message or hold no graph.
 */
export function readOnnxInfo(model: Uint8Array): OnnxInfo {
  const info: OnnxInfo = { metadata: {}, inputs: [], outputs: [] };
  let sawGraph = false;
  for (const f of fields(model)) {
    if (f.number === 14 && f.bytes) {
      const [key, value] = readStringPair(f.bytes);
      info.metadata[key] = value;
    } else if (f.number === 7 && f.bytes) {
      sawGraph = true;
      const initializers = new Set<string>();
      for (const g of fields(f.bytes)) {
        if (g.number === 5 && g.bytes) initializers.add(initializerName(g.bytes));
        else if (g.number === 11 && g.bytes) info.inputs.push(readValueInfo(g.bytes));
        else if (g.number === 12 && g.bytes) info.outputs.push(readValueInfo(g.bytes));
      }
      info.inputs = info.inputs.filter((i) => !initializers.has(i.name));
    }
  }
  if (!sawGraph) throw new Error('no graph in the file');
  return info;
}

/** Encoding and decoding whole ONNX models, and float tensors to and from TensorProto. */
import { onnxTypes } from './load.js';
import { TensorDataType, type ModelProtoObject, type TensorProtoObject } from './types.js';

/** Serialises a model to ONNX bytes. */
export function encodeOnnxModel(model: ModelProtoObject): Uint8Array {
  const { ModelProto } = onnxTypes();
  const problem = ModelProto.verify(model);
  if (problem) throw new Error(`invalid ONNX model object: ${problem}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

/**
 * Parses ONNX bytes into plain objects. Throws the decoder's error for bytes that are not a protobuf
 * message; the caller decides what a model must contain.
 */
export function decodeOnnxModel(bytes: Uint8Array): ModelProtoObject {
  const { ModelProto } = onnxTypes();
  const message = ModelProto.decode(bytes);
  const obj = ModelProto.toObject(message, { longs: Number, enums: Number, arrays: true, defaults: false }) as ModelProtoObject;
  obj.opsetImport ??= [];
  if (obj.graph) {
    obj.graph.node ??= [];
    obj.graph.initializer ??= [];
    obj.graph.input ??= [];
    obj.graph.output ??= [];
  }
  return obj;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** A float32 initializer stored as little-endian raw_data. */
export function floatTensorProto(name: string, dims: number[], data: Float32Array): TensorProtoObject {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (data.length !== expected) throw new Error(`tensor ${name}: ${data.length} values for shape [${dims.join(', ')}]`);
  let raw: Uint8Array;
  if (LITTLE_ENDIAN) {
    raw = new Uint8Array(data.byteLength);
    raw.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } else {
    raw = new Uint8Array(data.length * 4);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  }
  return { name, dims: [...dims], dataType: TensorDataType.FLOAT, rawData: raw };
}

/** The values of a float32 TensorProto, whether stored in raw_data or float_data. */
export function tensorProtoToFloat32(t: TensorProtoObject): Float32Array {
  if (t.dataType !== TensorDataType.FLOAT) throw new Error(`tensor ${t.name ?? '?'}: data type ${t.dataType}, expected float32`);
  const count = (t.dims ?? []).reduce((a, b) => a * b, 1);
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== count * 4) throw new Error(`tensor ${t.name ?? '?'}: ${t.rawData.length} raw bytes for ${count} floats`);
    if (LITTLE_ENDIAN) {
      // Copy: decoded bytes may be a Buffer view at an unaligned offset into a shared pool.
      const out = new Float32Array(count);
      new Uint8Array(out.buffer).set(t.rawData);
      return out;
    }
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const values = t.floatData ?? [];
  if (values.length !== count) throw new Error(`tensor ${t.name ?? '?'}: ${values.length} values for ${count} elements`);
  return Float32Array.from(values);
}

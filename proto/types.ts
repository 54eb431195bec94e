/**
 * Plain-object forms of the ONNX messages in proto/onnx.proto, as protobufjs encodes and decodes them
 * (field names in camelCase, 64-bit integers as numbers). Only the fields skd uses are typed.
 */

/** TensorProto.DataType values (the ones skd names; newer ones decode as their number). */
export const TensorDataType = {
  UNDEFINED: 0, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, COMPLEX64: 14, COMPLEX128: 15, BFLOAT16: 16,
} as const;

const DATA_TYPE_NAMES: Record<number, string> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 14: 'complex64', 15: 'complex128', 16: 'bfloat16',
  17: 'float8e4m3fn', 18: 'float8e4m3fnuz', 19: 'float8e5m2', 20: 'float8e5m2fnuz', 21: 'uint4', 22: 'int4', 23: 'float4e2m1',
};

/** A readable name for a TensorProto.DataType number, as onnxruntime spells tensor types. */
export function dataTypeName(code: number | undefined): string {
  if (code === undefined) return 'undefined';
  return DATA_TYPE_NAMES[code] ?? `type#${code}`;
}

/** AttributeProto.AttributeType values used when writing. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface TensorProtoObject {
  name?: string;
  dims?: number[];
  dataType?: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  dataLocation?: number;
  docString?: string;
}

export interface AttributeProtoObject {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProtoObject;
  floats?: number[];
  ints?: number[];
}

export interface NodeProtoObject {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  attribute?: AttributeProtoObject[];
  docString?: string;
}

/** One dimension: a fixed size (dimValue) or a named symbolic size (dimParam), or neither when unknown. */
export interface DimensionObject {
  dimValue?: number;
  dimParam?: string;
}

export interface ValueInfoProtoObject {
  name: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: DimensionObject[] } } };
  docString?: string;
}

export interface GraphProtoObject {
  name?: string;
  node: NodeProtoObject[];
  initializer: TensorProtoObject[];
  input: ValueInfoProtoObject[];
  output: ValueInfoProtoObject[];
  valueInfo?: ValueInfoProtoObject[];
  docString?: string;
}

export interface OperatorSetIdObject {
  domain?: string;
  version: number;
}

export interface StringStringEntryObject {
  key: string;
  value: string;
}

export interface ModelProtoObject {
  irVersion: number;
  opsetImport: OperatorSetIdObject[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: GraphProtoObject;
  metadataProps?: StringStringEntryObject[];
}

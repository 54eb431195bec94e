/**
 * Loads proto/onnx.proto with protobufjs at run time and hands out the message types. The .proto file
 * stays in the source tree's proto/ folder; the compiled module (dist/proto/load.js, or any other output
 * folder) finds it by walking up from its own location, so no generated code is needed.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_FILE = 'onnx.proto';

/** Absolute path of onnx.proto: beside this module if copied there, else in proto/ of an enclosing folder. */
export function onnxProtoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, PROTO_FILE))) return join(here, PROTO_FILE);
  for (let dir = dirname(here); ; dir = dirname(dir)) {
    const candidate = join(dir, 'proto', PROTO_FILE);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new Error(`cannot find proto/${PROTO_FILE} above ${here}; the package is incomplete`);
}

export interface OnnxTypes {
  root: protobuf.Root;
  ModelProto: protobuf.Type;
  GraphProto: protobuf.Type;
  NodeProto: protobuf.Type;
  TensorProto: protobuf.Type;
  ValueInfoProto: protobuf.Type;
  AttributeProto: protobuf.Type;
}

let cached: OnnxTypes | undefined;

/** The ONNX message types, parsed once per process. */
export function onnxTypes(): OnnxTypes {
  if (cached) return cached;
  const root = protobuf.loadSync(onnxProtoPath());
  root.resolveAll();
  const t = (name: string) => root.lookupType(`onnx.${name}`);
  cached = {
    root,
    ModelProto: t('ModelProto'),
    GraphProto: t('GraphProto'),
    NodeProto: t('NodeProto'),
    TensorProto: t('TensorProto'),
    ValueInfoProto: t('ValueInfoProto'),
    AttributeProto: t('AttributeProto'),
  };
  return cached;
}

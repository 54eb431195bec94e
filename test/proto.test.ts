import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { join } from 'node:path';
import { checkOnnxModel } from '../proto/check.js';
import { readOnnxModel } from '../proto/read.js';
import { FIXTURES } from './helpers/run-skd.js';
import { decodeOnnxModel, encodeOnnxModel, floatTensorProto, tensorProtoToFloat32 } from '../proto/codec.js';
import { onnxProtoPath, onnxTypes } from '../proto/load.js';
import { TensorDataType, type ModelProtoObject } from '../proto/types.js';

test('onnx.proto is found from the compiled module and parses', () => {
  assert.ok(existsSync(onnxProtoPath()));
  const { ModelProto, TensorProto } = onnxTypes();
  assert.equal(ModelProto.fields.graph.id, 7);
  assert.equal(TensorProto.fields.rawData.id, 9);
});

test('field numbers and wire types match the ONNX specification byte for byte', () => {
  const model: ModelProtoObject = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { node: [], initializer: [], input: [], output: [] },
    metadataProps: [{ key: 'k', value: 'v' }],
  };
  const bytes = Array.from(encodeOnnxModel(model));
  // ir_version = 1 (varint): 0x08 0x08
  assert.deepEqual(bytes.slice(0, 2), [0x08, 0x08]);
  const hex = Buffer.from(bytes).toString('hex');
  // opset_import = 8 (length-delimited, tag 0x42) holding domain = 1 ("") and version = 2 (17)
  assert.ok(hex.includes('42040a001011'), hex);
  // graph = 7 (tag 0x3a), empty
  assert.ok(hex.includes('3a00'), hex);
  // metadata_props = 14 (tag 0x72) holding key = 1 and value = 2
  assert.ok(hex.includes('72060a016b120176'), hex);
});

test('tensors, nodes and attributes round-trip; raw_data is little-endian float32', () => {
  const values = new Float32Array([1.5, -2.25, 3e-8, 0]);
  const t = floatTensorProto('layer1.conv1+bn1.weight', [2, 2], values);
  assert.deepEqual(Array.from(t.rawData!.subarray(0, 4)), [0x00, 0x00, 0xc0, 0x3f]); // 1.5f little-endian
  const model: ModelProtoObject = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'skd',
    graph: {
      name: 'g',
      node: [{ opType: 'Gemm', name: 'fc', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'transB', type: 2, i: 1 }, { name: 'alpha', type: 1, f: 0.5 }] }],
      initializer: [t],
      input: [{ name: 'x', type: { tensorType: { elemType: TensorDataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 2 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: TensorDataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 2 }] } } } }],
    },
  };
  const back = decodeOnnxModel(encodeOnnxModel(model));
  assert.equal(back.irVersion, 8);
  assert.equal(back.producerName, 'skd');
  assert.deepEqual(back.graph.node[0].input, ['x', 'w']);
  assert.equal(back.graph.node[0].attribute?.[0].i, 1);
  assert.equal(back.graph.node[0].attribute?.[1].f, 0.5);
  assert.deepEqual(back.graph.input[0].type?.tensorType?.shape?.dim, [{ dimParam: 'batch' }, { dimValue: 2 }]);
  assert.deepEqual(back.graph.initializer[0].dims, [2, 2]);
  assert.deepEqual(Array.from(tensorProtoToFloat32(back.graph.initializer[0])), Array.from(values));
  assert.deepEqual(Array.from(tensorProtoToFloat32({ name: 'f', dims: [2], dataType: 1, floatData: [4, 5] })), [4, 5]);
  assert.throws(() => floatTensorProto('bad', [3], new Float32Array(2)), /2 values for shape \[3\]/);
});

test('the structural check passes the PyTorch-exported fixture and names the problems of broken graphs', () => {
  assert.deepEqual(checkOnnxModel(readOnnxModel(join(FIXTURES, 'models', 'resnet12_w8-16-32-64_pytorch.onnx'))), []);
  const typed = (name: string) => ({ name, type: { tensorType: { elemType: TensorDataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 2 }] } } } });
  const broken: ModelProtoObject = {
    irVersion: 8,
    opsetImport: [{ domain: 'com.example', version: 1 }],
    graph: {
      node: [
        { opType: 'Relu', name: 'a', input: ['x', 'extra'], output: ['h'] },
        { opType: 'Gemm', name: 'b', input: ['h', 'w'], output: ['h'], attribute: [{ name: 'transB', type: 2 }] },
      ],
      initializer: [{ name: 'w', dims: [2, 2], dataType: 1, rawData: new Uint8Array(12) }],
      input: [typed('x')],
      output: [typed('y')],
    },
    metadataProps: [{ key: 'k', value: '1' }, { key: 'k', value: '2' }],
  };
  const problems = checkOnnxModel(broken).join('\n');
  for (const expected of [
    /no opset import for the default ONNX domain/, /node a \(Relu\): input extra is not defined/, /node a \(Relu\): 2 inputs/,
    /node b \(Gemm\): output h is already defined/, /attribute transB lacks its i value/, /initializer w: 12 bytes of raw_data for dims \[2, 2\]/,
    /graph output y is not produced/, /metadata_props key appears twice/,
  ]) assert.match(problems, expected);
});

/**
 * Structural checks of an ONNX model, a subset of what the ONNX project's checker enforces (that checker is
 * Python/C++ and not part of this toolkit): IR version and a default-domain opset import present, graph
 * inputs and outputs typed, nodes in topological order with every input defined exactly once, graph outputs
 * produced, initializer data sized to their dims, attributes carrying the field their type names, input
 * counts of the operators skd writes, distinct metadata keys. Returns the problems found (empty = passed).
 */
import { TensorDataType, type ModelProtoObject, type ValueInfoProtoObject } from './types.js';

/** [min, max] input counts of the operators skd writes (opset 17). */
const INPUT_ARITY: Record<string, [number, number]> = {
  Conv: [2, 3], Gemm: [2, 3], BatchNormalization: [5, 5], Relu: [1, 1], LeakyRelu: [1, 1], Add: [2, 2], Sub: [2, 2], Div: [2, 2],
  MaxPool: [1, 1], GlobalAveragePool: [1, 1], Flatten: [1, 1], Transpose: [1, 1], Identity: [1, 1],
};

const ATTRIBUTE_FIELD: Record<number, string> = { 1: 'f', 2: 'i', 3: 's', 4: 't', 5: 'g', 6: 'floats', 7: 'ints', 8: 'strings', 9: 'tensors', 10: 'graphs' };

const LIST_FIELDS = new Set(['floats', 'ints', 'strings', 'tensors', 'graphs']);

const BYTES_PER_ELEMENT: Record<number, number> = {
  [TensorDataType.FLOAT]: 4, [TensorDataType.UINT8]: 1, [TensorDataType.INT8]: 1, [TensorDataType.INT32]: 4,
  [TensorDataType.INT64]: 8, [TensorDataType.DOUBLE]: 8, [TensorDataType.FLOAT16]: 2, [TensorDataType.BOOL]: 1,
};

function checkValueInfo(v: ValueInfoProtoObject, where: string, problems: string[]): void {
  if (!v.name) problems.push(`${where}: value without a name`);
  const t = v.type?.tensorType;
  if (!t) {
    problems.push(`${where} ${v.name}: no tensor type`);
    return;
  }
  if (!t.elemType) problems.push(`${where} ${v.name}: element type undefined`);
  for (const d of t.shape?.dim ?? []) {
    if (d.dimValue !== undefined && d.dimValue < 0) problems.push(`${where} ${v.name}: negative dimension ${d.dimValue}`);
  }
}

export function checkOnnxModel(model: ModelProtoObject): string[] {
  const problems: string[] = [];
  if (!model.irVersion || model.irVersion < 3) problems.push(`IR version ${model.irVersion} missing or older than 3`);
  const domains = model.opsetImport.map((o) => o.domain ?? '');
  if (!model.opsetImport.some((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx')) problems.push('no opset import for the default ONNX domain');
  if (new Set(domains).size !== domains.length) problems.push('an opset domain is imported twice');
  const g = model.graph;
  if (!g) return [...problems, 'no graph'];

  const defined = new Set<string>();
  for (const t of g.initializer) {
    if (!t.name) problems.push('initializer without a name');
    else if (defined.has(t.name)) problems.push(`initializer ${t.name} defined twice`);
    else defined.add(t.name);
    const size = (t.dims ?? []).reduce((a, b) => a * b, 1);
    const width = BYTES_PER_ELEMENT[t.dataType ?? 0];
    if (!t.dataType) problems.push(`initializer ${t.name}: data type undefined`);
    else if (t.rawData && t.rawData.length > 0 && width && t.rawData.length !== size * width) {
      problems.push(`initializer ${t.name}: ${t.rawData.length} bytes of raw_data for dims [${(t.dims ?? []).join(', ')}]`);
    }
  }
  if (g.input.length === 0) problems.push('graph has no inputs');
  for (const v of g.input) {
    checkValueInfo(v, 'graph input', problems);
    if (!defined.has(v.name)) defined.add(v.name); // initializers may also be listed as inputs (IR < 4)
  }
  g.node.forEach((node, index) => {
    const label = `node ${node.name || `#${index}`} (${node.opType || '?'})`;
    if (!node.opType) problems.push(`${label}: no op_type`);
    for (const input of node.input) {
      if (input !== '' && !defined.has(input)) problems.push(`${label}: input ${input} is not defined before use`);
    }
    const arity = !node.domain ? INPUT_ARITY[node.opType] : undefined;
    const given = node.input.filter((i) => i !== '').length;
    if (arity && (given < arity[0] || given > arity[1])) problems.push(`${label}: ${given} inputs, the operator takes ${arity[0]}-${arity[1]}`);
    if (node.output.length === 0) problems.push(`${label}: no outputs`);
    for (const output of node.output) {
      if (output === '') continue;
      if (defined.has(output)) problems.push(`${label}: output ${output} is already defined`);
      defined.add(output);
    }
    const names = new Set<string>();
    for (const a of node.attribute ?? []) {
      if (names.has(a.name)) problems.push(`${label}: attribute ${a.name} given twice`);
      names.add(a.name);
      const field = ATTRIBUTE_FIELD[a.type];
      if (!field) problems.push(`${label}: attribute ${a.name} has no type`);
      else if ((a as unknown as Record<string, unknown>)[field] === undefined && !LIST_FIELDS.has(field)) problems.push(`${label}: attribute ${a.name} lacks its ${field} value`);
    }
  });
  if (g.output.length === 0) problems.push('graph has no outputs');
  for (const v of g.output) {
    checkValueInfo(v, 'graph output', problems);
    if (!defined.has(v.name)) problems.push(`graph output ${v.name} is not produced by any node`);
  }
  const keys = (model.metadataProps ?? []).map((p) => p.key);
  if (new Set(keys).size !== keys.length) problems.push('a metadata_props key appears twice');
  return problems;
}

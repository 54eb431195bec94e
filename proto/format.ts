/** Human-readable text for OnnxModelInfo (what `skd inspect` prints). */
import type { OnnxDim, OnnxModelInfo, OnnxValueInfo } from './read.js';

function dims(shape: OnnxDim[] | null): string {
  if (shape === null) return 'unknown shape';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

function values(list: OnnxValueInfo[]): string[] {
  const width = Math.max(0, ...list.map((v) => v.name.length));
  return list.map((v) => `  ${v.name.padEnd(width)}  ${v.elemType}  ${dims(v.shape)}`);
}

export function formatOnnxModelInfo(info: OnnxModelInfo, label: string): string {
  const opsets = info.opsetImports.map((o) => `${o.domain === '' ? 'ai.onnx' : o.domain} ${o.version}`).join(', ') || 'none';
  const ops = Object.entries(info.opTypes).sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${n}`).join(', ');
  const lines = [
    label,
    `  IR version ${info.irVersion}; opset imports: ${opsets}`,
    `  producer: ${[info.producer.name, info.producer.version].filter(Boolean).join(' ') || 'unknown'}`,
    `  graph${info.graphName ? ` ${info.graphName}` : ''}: ${info.nodeCount} nodes${ops ? ` (${ops})` : ''}, ${info.initializerCount} initializers, ${info.parameterCount.toLocaleString('en-US')} parameters`,
    'inputs:',
    ...values(info.inputs),
    'outputs:',
    ...values(info.outputs),
  ];
  const keys = Object.keys(info.metadata).sort();
  lines.push(keys.length === 0 ? 'metadata: none' : 'metadata:');
  for (const key of keys) lines.push(`  ${key} = ${info.metadata[key]}`);
  return lines.join('\n');
}

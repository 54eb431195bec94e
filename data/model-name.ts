/** The name a model file goes by on the KServe v2 routes and in a Triton repository: its base name without .onnx. */
export function modelNameFromPath(path: string): string {
  const base = (path.split(/[\\/]/).pop() ?? 'model').replace(/\.onnx$/i, '');
  return base.replace(/[^A-Za-z0-9_.-]/g, '_') || 'model';
}

/**
 * A Node module-resolution hook (module.register) for one purpose: tfjs-core's ESM files (dist/*.js) import
 * each other without file extensions, which Node's ESM resolver rejects. Training needs one of those files,
 * dist/register_all_gradients.js (gradients are not part of tfjs-core's Node bundle), so relative imports
 * inside @tensorflow/tfjs-core/dist are retried with ".js" and "/index.js".
 */
interface ResolveContext { parentURL?: string }
type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<{ url: string }> {
  try {
    return await next(specifier, context);
  } catch (err) {
    const parent = context.parentURL ?? '';
    const code = (err as { code?: string }).code;
    const retry = specifier.startsWith('.') && parent.includes('/@tensorflow/tfjs-core/dist/')
      && (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_UNSUPPORTED_DIR_IMPORT');
    if (!retry) throw err;
    try {
      return await next(`${specifier}.js`, context);
    } catch {
      return next(`${specifier}/index.js`, context);
    }
  }
}

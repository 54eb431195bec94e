/** One clear line for a failure, a stack trace only when SKD_DEBUG is set, and a non-zero exit. */
export function reportFailure(err: unknown): never {
  const e = err instanceof Error ? err : new Error(String(err));
  console.error(`skd: ${e.message}`);
  if (process.env.SKD_DEBUG) console.error(e.stack);
  process.exit(1);
}

/** Opens the store that a --store value names: a postgres:// URL, or a folder (the embedded default). */
import { resolve } from 'node:path';
import { FolderStore, type ClassifierStore } from './store.js';

export function isDatabaseUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

export async function openClassifierStore(spec: string): Promise<ClassifierStore> {
  if (isDatabaseUrl(spec)) {
    // Loaded only when asked for, so the folder store needs no database driver at start.
    const { PostgresStore } = await import('./store-postgres.js');
    return PostgresStore.open(spec);
  }
  return FolderStore.open(resolve(spec));
}

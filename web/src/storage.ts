/**
 * Keeps the classifier across page reloads in IndexedDB, one entry per model SHA-256 (features from one
 * model are meaningless to another). Entries hold the page's working state as JSON text.
 */
import { type ClassifierState, type ModelIdentity, parseState, serializeState } from './classifier.js';

const DB_NAME = 'skd-web';
const DB_VERSION = 1;
const STORE = 'classifiers';

function openDatabase(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB could not be opened'));
    request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab of this page'));
  });
}

async function withStore<T>(mode: IDBTransactionMode, use: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDatabase();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = use(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

/** The classifier kept for this model, or null when there is none (or storage is unavailable). */
export async function loadStoredClassifier(model: ModelIdentity): Promise<ClassifierState | null> {
  if (typeof indexedDB === 'undefined') return null;
  const text = await withStore<unknown>('readonly', (store) => store.get(model.sha256));
  if (typeof text !== 'string') return null;
  return parseState(text, model);
}

export async function storeClassifier(state: ClassifierState): Promise<void> {
  if (typeof indexedDB === 'undefined') return;
  await withStore<IDBValidKey>('readwrite', (store) => store.put(serializeState(state), state.model.sha256));
}

export async function deleteStoredClassifier(model: ModelIdentity): Promise<void> {
  if (typeof indexedDB === 'undefined') return;
  await withStore<undefined>('readwrite', (store) => store.delete(model.sha256));
}

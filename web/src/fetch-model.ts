/** Downloads the model from this page's server, reporting progress (models can be tens of megabytes). */
import { ModelUnusableError } from './preprocessing.js';

/** The model's bytes, or null when the server has none (404). Only same-origin URLs: the page makes no outside requests. */
export async function fetchModel(url: string, onProgress: (received: number, total: number) => void): Promise<Uint8Array | null> {
  const target = new URL(url, document.baseURI);
  if (target.origin !== location.origin) throw new ModelUnusableError(`The model must come from this server, not ${target.origin}.`);
  const response = await fetch(target, { cache: 'no-cache' });
  if (response.status === 404) return null;
  if (!response.ok || !response.body) throw new Error(`the server answered ${response.status} for ${target.pathname}`);
  const total = Number(response.headers.get('content-length')) || 0;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received, total);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

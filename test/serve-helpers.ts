/** Shared pieces of the serve tests: a small deterministic extractor, image encoders, an HTTP client. */
import sharp from 'sharp';
import type { ServedExtractor } from '../infer/server/context.js';

/**
 * Features = mean R, G, B of the top half and of the bottom half of each image, plus a constant: cheap,
 * deterministic, independent of the batch the image is in, and different for different pictures.
 */
export class FakeExtractor implements ServedExtractor {
  readonly featureDim = 7;
  readonly preprocessing: { size: number };
  readonly metadata: Record<string, string> = { 'skd.fake': 'true' };
  readonly runs: number[] = [];
  closed = false;
  constructor(readonly size = 32, private readonly delayMs = 0) {
    this.preprocessing = { size };
  }
  async extractPixels(pixels: Uint8Array, count: number): Promise<Float32Array> {
    this.runs.push(count);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const s = this.size;
    const out = new Float32Array(count * this.featureDim);
    for (let n = 0; n < count; n++) {
      const sums = [0, 0, 0, 0, 0, 0];
      for (let y = 0; y < s; y++) {
        const half = y < s / 2 ? 0 : 3;
        for (let x = 0; x < s; x++) {
          const o = ((n * s + y) * s + x) * 3;
          for (let c = 0; c < 3; c++) sums[half + c]! += pixels[o + c]!;
        }
      }
      for (let k = 0; k < 6; k++) out[n * this.featureDim + k] = sums[k]! / ((s * s) / 2) / 255;
      out[n * this.featureDim + 6] = 0.05;
    }
    return out;
  }
  close(): void {
    this.closed = true;
  }
}

/** A size x size RGB image: a solid colour with a lighter top half, plus seeded noise. */
export function syntheticImage(size: number, rgb: [number, number, number], seed: number): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        const noise = (state >>> 24) % 31 - 15;
        const lift = y < size / 2 ? 40 : 0;
        px[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, rgb[c]! + lift + noise));
      }
    }
  }
  return px;
}

export async function encodeImage(pixels: Uint8Array, width: number, height: number, format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<string> {
  const img = sharp(Buffer.from(pixels), { raw: { width, height, channels: 3 } });
  const buf = await (format === 'png' ? img.png() : format === 'jpeg' ? img.jpeg({ quality: 95 }) : img.webp({ lossless: true })).toBuffer();
  return buf.toString('base64');
}

export function rawImage(pixels: Uint8Array, height: number, width: number): { shape: number[]; pixels: number[] } {
  return { shape: [height, width, 3], pixels: Array.from(pixels) };
}

export const COLOURS: [number, number, number][] = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30], [30, 200, 200]];

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: any;
}

export async function request(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = (typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body)) as BodyInit;
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics, static files)
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

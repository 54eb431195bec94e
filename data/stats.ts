/** Summary statistics of an ImageSet, for `skd data inspect` and reports. Browser-safe. */
import type { ImageSet } from './types.js';

export interface ImageSetSummary {
  dataset: string;
  split: string;
  images: number;
  classes: number;
  /** [height, width, channels]. */
  imageShape: [number, number, number];
  /** Image folders: the files' [height, width] range before resizing to imageShape. */
  storedImageSize?: { min: [number, number]; max: [number, number] };
  imagesPerClass: { min: number; max: number; mean: number };
  /** Per-channel mean and standard deviation of pixel values scaled to [0, 1]. */
  pixelMean: number[];
  pixelStd: number[];
  /** Each class: remapped label, name, id in the source file and image count. */
  classList: { label: number; name: string; originalId: number | string; images: number }[];
}

export function summarizeImageSet(set: ImageSet): ImageSetSummary {
  const k = set.classNames.length;
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < set.count; i++) counts[set.labels[i]]++;
  const c = set.channels;
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  // Sum per channel in chunks of exact integer arithmetic, so large sets do not lose precision.
  const chunk = 1 << 16;
  for (const px of set.images.chunks) for (let start = 0; start < px.length; start += chunk * c) {
    const end = Math.min(px.length, start + chunk * c);
    const s = new Array<number>(c).fill(0);
    const q = new Array<number>(c).fill(0);
    for (let i = start; i < end; i += c) {
      for (let ch = 0; ch < c; ch++) {
        const v = px[i + ch];
        s[ch] += v;
        q[ch] += v * v;
      }
    }
    for (let ch = 0; ch < c; ch++) { sum[ch] += s[ch]; sumSq[ch] += q[ch]; }
  }
  const n = set.count * set.height * set.width;
  const mean = Array.from(sum, (s) => s / n / 255);
  const std = Array.from(sumSq, (q, ch) => Math.sqrt(Math.max(0, q / n / (255 * 255) - mean[ch] * mean[ch])));
  return {
    dataset: set.name,
    split: set.split,
    images: set.count,
    classes: k,
    imageShape: [set.height, set.width, set.channels],
    ...(set.storedSize ? { storedImageSize: set.storedSize } : {}),
    imagesPerClass: {
      min: k ? Math.min(...counts) : 0,
      max: k ? Math.max(...counts) : 0,
      mean: k ? set.count / k : 0,
    },
    pixelMean: mean,
    pixelStd: std,
    classList: counts.map((images, label) => ({ label, name: set.classNames[label], originalId: set.originalIds[label], images })),
  };
}

/** " (resized from 32x32 as stored)" for image folders; "" when the set keeps its stored size. */
function storedText(s: ImageSetSummary): string {
  const st = s.storedImageSize;
  if (!st) return '';
  const [h, w] = s.imageShape;
  const same = st.min[0] === st.max[0] && st.min[1] === st.max[1];
  if (same && st.min[0] === h && st.min[1] === w) return ' (as stored)';
  return same ? ` (resized from ${st.min[0]}x${st.min[1]} as stored)` : ` (resized from stored sizes ${st.min[0]}x${st.min[1]} to ${st.max[0]}x${st.max[1]})`;
}

/** A few readable lines describing a summary. */
export function formatSummary(s: ImageSetSummary, source?: string): string {
  const f = (xs: number[]): string => `[${xs.map((x) => x.toFixed(4)).join(', ')}]`;
  const names = s.classList.map((c) => (c.name === String(c.originalId) ? c.name : `${c.name} (${c.originalId})`));
  const shown = names.length > 12 ? `${names.slice(0, 12).join(', ')}, ... (${names.length - 12} more)` : names.join(', ');
  return [
    `${s.dataset} / ${s.split}${source ? `  (${source})` : ''}`,
    `  images:           ${s.images}`,
    `  classes:          ${s.classes}: ${shown}`,
    `  images per class: min ${s.imagesPerClass.min}, max ${s.imagesPerClass.max}, mean ${s.imagesPerClass.mean.toFixed(1)}`,
    `  image size:       ${s.imageShape[0]}x${s.imageShape[1]}x${s.imageShape[2]}${storedText(s)}`,
    `  pixel mean (0-1): ${f(s.pixelMean)}`,
    `  pixel std (0-1):  ${f(s.pixelStd)}`,
  ].join('\n');
}

/** Decoding pictures the user gives (files, drops, camera frames) into pixels and thumbnails. */

/** Thrown when a file is not a picture this browser can decode; its message names the file. */
export class UndecodableImageError extends Error {
  override name = 'UndecodableImageError';
  constructor(readonly fileName: string) {
    super(`“${fileName}” could not be read as a picture. Use a PNG, JPEG, WebP, GIF or BMP image.`);
  }
}

/** Decodes a picture without colour-space conversion, so PNG pixels reach the model unchanged. */
export async function decodeImage(blob: Blob, fileName: string): Promise<ImageBitmap> {
  try {
    return await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new UndecodableImageError(fileName);
  }
}

function canvas2d(width: number, height: number): { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D } {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser cannot draw on a canvas');
  return { canvas, ctx };
}

/** The largest centred square of the picture, drawn at size x size. */
function drawCentreSquare(bitmap: ImageBitmap, size: number): { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D } {
  const side = Math.min(bitmap.width, bitmap.height);
  const sx = Math.floor((bitmap.width - side) / 2);
  const sy = Math.floor((bitmap.height - side) / 2);
  const drawn = canvas2d(size, size);
  drawn.ctx.imageSmoothingEnabled = true;
  drawn.ctx.imageSmoothingQuality = 'high';
  drawn.ctx.drawImage(bitmap, sx, sy, side, side, 0, 0, size, size);
  return drawn;
}

/** RGBA pixels of the picture's centre square resized to size x size (exact copy when already that size). */
export function modelPixels(bitmap: ImageBitmap, size: number): Uint8ClampedArray {
  const { ctx } = drawCentreSquare(bitmap, size);
  return ctx.getImageData(0, 0, size, size).data;
}

/** A small JPEG data URL of the picture, kept with the classifier so the page can show it after a reload. */
export function thumbnailOf(bitmap: ImageBitmap, size = 96): string {
  const { canvas } = drawCentreSquare(bitmap, size);
  return canvas.toDataURL('image/jpeg', 0.8);
}

/** Whether the browser can ask for the camera (it needs a secure context: https or localhost). */
export function cameraAvailable(): boolean {
  return typeof navigator !== 'undefined' && !!navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === 'function';
}

/** Grabs the current frame of a playing video element as a PNG blob. */
export async function captureFrame(video: HTMLVideoElement): Promise<Blob> {
  const { canvas, ctx } = canvas2d(video.videoWidth, video.videoHeight);
  ctx.drawImage(video, 0, 0);
  return await new Promise<Blob>((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('the camera frame could not be captured'))), 'image/png'),
  );
}

/**
 * The bytes served at /model.onnx. A file exported by an older skd may record local paths in its training
 * configuration; it is served as a copy with those replaced by base names (the file on disk, and the sha256 that
 * identifies the model for stored classifiers, stay as they are). Any other file is streamed unchanged.
 */
import { readFile } from 'node:fs/promises';
import { decodeOnnxModel, encodeOnnxModel } from '../../proto/codec.js';
import { portableMetadata } from '../../proto/portable-config.js';
import { readOnnxMetadataProps } from '../onnx-metadata.js';

/** The portable copy of the model at `path`, or undefined when the file needs no change (or is no ONNX file). */
export async function portableModelBytes(path: string): Promise<Uint8Array | undefined> {
  const bytes = await readFile(path);
  let props: Record<string, string>;
  try {
    props = readOnnxMetadataProps(bytes);
  } catch {
    return undefined; // not ONNX as far as the metadata goes: served as it is, whoever loads it will say so
  }
  const portable = portableMetadata(props);
  if (portable === props) return undefined;
  const model = decodeOnnxModel(bytes);
  model.metadataProps = (model.metadataProps ?? []).map((p) => ({ key: p.key, value: portable[p.key] ?? p.value }));
  return encodeOnnxModel(model);
}

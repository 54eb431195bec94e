/**
 * A model file travels (served at /model.onnx, shown by /v1/model and `skd inspect`, shared), so the training
 * configuration it records keeps no local paths: the data folder, the teacher and the output folder are
 * recorded by their base names, and so is any other value that is an absolute path. Files exported before this
 * rule are read through the same function. Browser-safe.
 */

/** Training-configuration keys whose values are local paths. */
export const PATH_KEYS: readonly string[] = ['dataRoot', 'pathT', 'out'];

/** The metadata key holding the training configuration (see export/metadata.ts). */
const TRAINING_CONFIG_KEY = 'skd.training_config';

/** POSIX, home-relative, Windows drive or UNC paths. */
const ABSOLUTE_PATH = /^(?:\/|~[/\\]|[A-Za-z]:[/\\]|\\\\)/;

/** Last component of a POSIX or Windows path ("/data/cifar/" -> "cifar"). */
export function pathBaseName(path: string): string {
  const parts = path.split(/[/\\]+/).filter((p) => p.length > 0);
  return parts[parts.length - 1] ?? '';
}

function portableValue(value: unknown, isPathKey: boolean): unknown {
  if (typeof value === 'string') return isPathKey || ABSOLUTE_PATH.test(value) ? pathBaseName(value) : value;
  if (Array.isArray(value)) return value.map((v) => portableValue(v, isPathKey));
  if (value !== null && typeof value === 'object') return portableTrainingConfig(value as Record<string, unknown>);
  return value;
}

/** The configuration with every local path replaced by its base name. */
export function portableTrainingConfig(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) out[key] = portableValue(value, PATH_KEYS.includes(key));
  return out;
}

/**
 * metadata_props with the training configuration made portable; the same object when there was nothing to
 * change (no configuration, not JSON, or no paths in it).
 */
export function portableMetadata(props: Record<string, string>): Record<string, string> {
  const text = props[TRAINING_CONFIG_KEY];
  if (text === undefined) return props;
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    return props;
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return props;
  const portable = JSON.stringify(portableTrainingConfig(config as Record<string, unknown>));
  if (portable === JSON.stringify(config)) return props;
  return { ...props, [TRAINING_CONFIG_KEY]: portable };
}

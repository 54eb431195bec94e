/**
 * The reference implementation's architecture names (SKD's and RFS's `--model`, `--model_s`, `--model_t`) and the
 * skd backbone each one trains as. Names the reference offers that skd does not implement are refused by name.
 */
import { UserError } from '../../data/errors.js';
import type { ModelName } from '../../train/config.js';

/** Every name `--model` accepts: skd's own, then the reference's. */
export const MODEL_NAME_MAP: Readonly<Record<string, ModelName>> = {
  resnet12: 'resnet12',
  conv4: 'conv4',
  resnet12_ssl: 'resnet12',
  convnet4: 'conv4',
};

/** Architectures of the reference's model pool that skd does not build. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  wrn_28_10: 'WRN-28-10',
  resnet18: 'ResNet-18',
  resnet24: 'ResNet-24',
  resnet50: 'ResNet-50',
  resnet101: 'ResNet-101',
  seresnet12: 'SE-ResNet-12',
  seresnet18: 'SE-ResNet-18',
  seresnet24: 'SE-ResNet-24',
  seresnet50: 'SE-ResNet-50',
  seresnet101: 'SE-ResNet-101',
};

export const MODEL_NAMES_HELP = 'resnet12 (the reference\'s resnet12_ssl and resnet12) or conv4 (the reference\'s convnet4)';

/** The skd backbone a name stands for; one clear line for names skd does not build. */
export function modelFromName(flag: string, name: string): ModelName {
  const model = MODEL_NAME_MAP[name];
  if (model) return model;
  const supported = `skd builds ${MODEL_NAMES_HELP}`;
  if (UNSUPPORTED[name]) throw new UserError(`${flag} ${name}: ${UNSUPPORTED[name]} is not supported; ${supported}`);
  throw new UserError(`${flag} ${name}: unknown architecture; ${supported}`);
}

/** Whether a `--model` value names an architecture rather than a file. */
export function isModelName(name: string): boolean {
  return name in MODEL_NAME_MAP || name in UNSUPPORTED;
}

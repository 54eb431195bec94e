/**
 * Registers TensorFlow.js's gradient functions. tfjs-core's Node bundle contains the ops but not their
 * gradients (the @tensorflow/tfjs umbrella package normally registers them); they live only in tfjs-core's
 * ESM sources, loaded here through a resolution hook (tfjs-resolve-hook.ts). Gradients register in
 * tfjs's global registry, so they serve the already-loaded Node bundle. Idempotent.
 */
import { register } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { checkTfjsVersion } from './tfjs-version.js';

let registered: Promise<void> | undefined;

function hasGradients(): boolean {
  try {
    tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(tf.square(x)))(tf.scalar(1)));
    return true;
  } catch {
    return false;
  }
}

export function registerGradients(): Promise<void> {
  registered ??= (async () => {
    if (hasGradients()) return;
    checkTfjsVersion('@tensorflow/tfjs-core', 'it loads dist/register_all_gradients.js from the ESM sources');
    if (typeof register !== 'function') throw new Error(`training needs Node.js 20.6 or later (module.register), this is ${process.version}`);
    register('./tfjs-resolve-hook.js', import.meta.url);
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    if (!hasGradients()) throw new Error('TensorFlow.js gradients failed to register');
  })();
  return registered;
}

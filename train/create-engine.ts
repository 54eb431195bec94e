/** Builds the engine a run asked for (train/engine.ts): ONNX Runtime (default) or TensorFlow.js. */
import { UserError } from '../data/errors.js';
import { registerGradients } from '../models/tfjs-gradients.js';
import { DEFAULT_ENGINE, ENGINE_NAMES, type EngineName, type EngineOptions, type EngineSetup, type TrainingEngine } from './engine.js';
import { checkMicroBatch } from './ort/micro-batch.js';
import { OrtEngine } from './ort/engine.js';
import { TfjsEngine } from './tfjs-engine.js';

export type { EngineSetup };

const describedOnce = new Set<string>();

/** Refuses, in one line, a micro-batch size that does not divide the batch, or any split on the tfjs engine (it steps whole batches). */
export function checkEngineMicroBatch(engine: EngineName, microBatch: number | 'auto' | undefined, batchSize: number): void {
  if (microBatch === undefined || microBatch === 'auto') return;
  checkMicroBatch(microBatch, batchSize);
  if (engine === 'tfjs' && microBatch !== batchSize) {
    throw new UserError(`--micro-batch ${microBatch}: the tfjs engine steps whole batches; use --engine ort to accumulate gradients over micro-batches, or --micro-batch auto`);
  }
}

export async function createEngine(setup: EngineSetup, options: EngineOptions = {}): Promise<TrainingEngine> {
  const name = options.engine ?? DEFAULT_ENGINE;
  if (!ENGINE_NAMES.includes(name)) throw new UserError(`unknown engine '${String(name)}': expected one of ${ENGINE_NAMES.join(', ')}`);
  checkEngineMicroBatch(name, setup.microBatch, setup.batchSize);
  if (name === 'tfjs') {
    await registerGradients();
    return new TfjsEngine(setup);
  }
  const engine = await OrtEngine.create({ ...setup, device: options.device, convolution: options.convolution, threads: options.threads, log: options.log });
  const provider = engine.provider === 'cpu' ? 'CPU' : engine.provider === 'cuda' ? 'CUDA' : 'WebGPU';
  const line = `engine: ONNX Runtime (${provider} execution provider, ${engine.convolution === 'winograd' ? 'Winograd' : 'direct'} convolutions)`;
  if (!describedOnce.has(line)) {
    describedOnce.add(line);
    options.log?.(line);
  }
  return engine;
}

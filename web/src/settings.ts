/** The form that describes a model without preprocessing metadata (same meaning as the URL parameters). */
import { type PreprocessingOverrides, overridesFromParams } from './preprocessing.js';
import { byId } from './view.js';

const fields = {
  layout: () => byId<HTMLSelectElement>('setting-layout'),
  size: () => byId<HTMLInputElement>('setting-size'),
  mean: () => byId<HTMLInputElement>('setting-mean'),
  std: () => byId<HTMLInputElement>('setting-std'),
  inGraph: () => byId<HTMLInputElement>('setting-in-graph'),
  output: () => byId<HTMLInputElement>('setting-output'),
};

/** The form's settings; empty fields leave the model's own values. Throws with a message on bad values. */
export function readSettingsForm(): PreprocessingOverrides {
  const params = new URLSearchParams();
  if (fields.layout().value) params.set('layout', fields.layout().value);
  if (fields.size().value.trim()) params.set('size', fields.size().value);
  if (fields.mean().value.trim()) params.set('mean', fields.mean().value);
  if (fields.std().value.trim()) params.set('std', fields.std().value);
  if (fields.inGraph().checked) params.set('inGraph', 'true');
  if (fields.output().value.trim()) params.set('output', fields.output().value);
  return overridesFromParams(params);
}

export function fillSettingsForm(o: PreprocessingOverrides): void {
  if (o.layout) fields.layout().value = o.layout;
  if (o.size) fields.size().value = String(o.size);
  if (o.mean) fields.mean().value = o.mean.join(', ');
  if (o.std) fields.std().value = o.std.join(', ');
  if (o.normalizationInGraph !== undefined) fields.inGraph().checked = o.normalizationInGraph;
  if (o.outputName) fields.output().value = o.outputName;
}

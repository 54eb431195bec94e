/**
 * The page: loads a backbone, lets the user build classes from support pictures, and classifies new
 * pictures. The body's data-state attribute names the page's state (loading, no-model, model-error,
 * no-classes, too-few, ready) for styling and for the end-to-end test.
 */
import type { Head } from '../../infer/heads/types.js';
import { Backbone } from './backbone.js';
import { readOnnxInfo } from '../../infer/onnx-metadata.js';
import { sha256Hex } from '../../infer/sha256.js';
import {
  type ClassifierState, type ModelIdentity, DEFAULT_CLASSIFIER_NAME, checkClassName, classProbabilities, fitHead, newId,
  parseClassifier, readiness, serializeClassifier,
} from './classifier.js';
import { Camera } from './camera.js';
import { UndecodableImageError, cameraAvailable, decodeImage, modelPixels, thumbnailOf } from './images.js';
import { fetchModel } from './fetch-model.js';
import {
  ModelUnusableError, type PreprocessingOverrides, augmentFromParams, augmentedCopies, describePreprocessing, overridesFromParams,
  resolveForPage,
} from './preprocessing.js';
import { deleteStoredClassifier, loadStoredClassifier, storeClassifier } from './storage.js';
import { ui } from './elements.js';
import { makeDropTarget, renderClasses, renderProbabilities, showMessage } from './view.js';
import { readSettingsForm, fillSettingsForm } from './settings.js';

type PageState = 'loading' | 'no-model' | 'model-error' | 'no-classes' | 'too-few' | 'ready';

/** What the end-to-end test reads back (features and probabilities of the last classified picture). */
interface PageProbe {
  lastQuery: { features: number[]; probabilities: number[]; classes: string[] } | null;
  provider: string | null;
}

const DEFAULT_MODEL_URL = 'model.onnx';

const probe: PageProbe = { lastQuery: null, provider: null };
(globalThis as unknown as { skdPage: PageProbe }).skdPage = probe;

let backbone: Backbone | null = null;
let classifier: ClassifierState | null = null;
let head: Head | null = null;
let modelBytes: { bytes: Uint8Array; name: string } | null = null;
const camera = new Camera();
const params = new URLSearchParams(location.search);

function setState(state: PageState): void {
  document.body.dataset.state = state;
  const usable = state !== 'loading' && state !== 'no-model' && state !== 'model-error';
  ui.classesSection.inert = !usable;
  ui.querySection.inert = !usable;
}

function setBusy(busy: boolean): void {
  document.body.dataset.busy = String(busy);
}

// ---- The classifier state: render, persist, refit ----

/** Every user action starts by clearing the messages of earlier ones, so no message outlives what it was about. */
function clearMessages(): void {
  showMessage(ui.classError, null);
  showMessage(ui.queryError, null);
}

function refresh(): void {
  if (!classifier) return;
  head = null;
  const r = readiness(classifier);
  renderClasses(ui.classList, classifier.classes, classActions, cameraAvailable());
  ui.saveClassifier.disabled = r.kind !== 'ready';
  ui.clearClasses.disabled = classifier.classes.length === 0;
  if (r.kind === 'no-classes') {
    setState('no-classes');
    ui.classesHint.textContent = 'No classes yet. Name a class (for example “cat”), add it, then add a few pictures of it. You need at least two classes.';
  } else if (r.kind === 'too-few') {
    setState('too-few');
    ui.classesHint.textContent = r.message;
  } else if (classifier.importedHead) {
    setState('ready');
    ui.classesHint.textContent = `Ready: ${classifier.classes.length} classes fitted by skd serve (it keeps no pictures). ` +
      'Classify a picture below; adding pictures or classes fits the classifier again from the pictures in this page.';
  } else {
    setState('ready');
    const pictures = classifier.classes.reduce((sum, c) => sum + c.pictures.length, 0);
    ui.classesHint.textContent = `Ready: ${classifier.classes.length} classes from ${pictures} pictures. Classify a picture below.`;
  }
}

async function persist(): Promise<void> {
  if (!classifier) return;
  try {
    await storeClassifier(classifier);
  } catch (err) {
    showMessage(ui.classError, `The classes could not be kept in this browser's storage (${(err as Error).message}); save them to a file instead.`);
  }
}

function currentHead(): Head {
  if (!classifier) throw new Error('no classifier');
  head ??= fitHead(classifier);
  return head;
}

// ---- Pictures → features ----

/** Features of pictures: one row each, or `copies` rows (augmented copies) each when copies > 0. */
async function featuresOfFiles(files: File[], copies = 0): Promise<{ ok: { features: Float32Array; thumbnail: string; file: File }[]; failed: string[] }> {
  if (!backbone) throw new Error('no model');
  const size = backbone.preprocessing.size;
  const decoded: { pixels: Uint8ClampedArray; thumbnail: string; file: File }[] = [];
  const failed: string[] = [];
  for (const file of files) {
    try {
      const bitmap = await decodeImage(file, file.name);
      decoded.push({ pixels: modelPixels(bitmap, size), thumbnail: thumbnailOf(bitmap), file });
      bitmap.close();
    } catch (err) {
      if (err instanceof UndecodableImageError) failed.push(err.message);
      else throw err;
    }
  }
  if (decoded.length === 0) return { ok: [], failed };
  const rows = Math.max(1, copies);
  const inputs = copies > 0 ? decoded.flatMap((d) => augmentedCopies(d.pixels, size, copies)) : decoded.map((d) => d.pixels);
  const { data, dim } = await backbone.features(inputs);
  return { ok: decoded.map((d, i) => ({ features: data.slice(i * rows * dim, (i + 1) * rows * dim), thumbnail: d.thumbnail, file: d.file })), failed };
}

async function addPictures(classId: string, files: File[]): Promise<void> {
  if (!classifier) return;
  clearMessages();
  setBusy(true);
  ui.classesHint.textContent = `Reading ${files.length} picture${files.length === 1 ? '' : 's'}…`;
  try {
    // A classifier without pictures takes the page's augmentation setting; one with pictures keeps its own.
    if (classifier.classes.every((c) => c.pictures.length === 0)) classifier.augment = supportAugment;
    const { ok, failed } = await featuresOfFiles(files, classifier.augment);
    const entry = classifier.classes.find((c) => c.id === classId);
    if (!entry) return;
    if (ok.length > 0) classifier.importedHead = null;
    for (const item of ok) entry.pictures.push({ id: newId(), thumbnail: item.thumbnail, features: item.features });
    if (failed.length > 0) showMessage(ui.classError, failed.join(' '));
    refresh();
    await persist();
  } catch (err) {
    showMessage(ui.classError, `The pictures could not be added: ${(err as Error).message}`);
    refresh();
  } finally {
    setBusy(false);
  }
}

async function classify(file: File | Blob, name: string): Promise<void> {
  if (!classifier) return;
  clearMessages();
  hideResult();
  const r = readiness(classifier);
  if (r.kind !== 'ready') {
    showMessage(ui.queryError, r.kind === 'no-classes' ? 'Create at least two classes with pictures first.' : r.message);
    return;
  }
  setBusy(true);
  try {
    const asFile = file instanceof File ? file : new File([file], name);
    const { ok, failed } = await featuresOfFiles([asFile]);
    if (ok.length === 0) {
      showMessage(ui.queryError, failed[0] ?? `“${name}” could not be read.`);
      return;
    }
    const features = ok[0].features;
    const probabilities = classProbabilities(currentHead(), features, classifier.model.featureDim);
    const names = classifier.classes.map((c) => c.name);
    ui.resultImage.src = ok[0].thumbnail;
    renderProbabilities(ui.resultLabel, ui.resultProbabilities, names, probabilities);
    ui.result.hidden = false;
    document.body.dataset.result = 'shown';
    probe.lastQuery = { features: Array.from(features), probabilities: Array.from(probabilities), classes: names };
  } catch (err) {
    showMessage(ui.queryError, `The picture could not be classified: ${(err as Error).message}`);
  } finally {
    setBusy(false);
  }
}

const classActions = {
  onAddFiles: (classId: string, files: File[]) => void addPictures(classId, files),
  onCamera: (classId: string) => void camera.capture().then((blob) => blob && addPictures(classId, [new File([blob], 'camera.png', { type: 'image/png' })])),
  onRemoveClass: (classId: string) => {
    if (!classifier) return;
    const entry = classifier.classes.find((c) => c.id === classId);
    if (!entry || (entry.pictures.length > 0 && !confirm(`Remove the class “${entry.name}” and its ${entry.pictures.length} pictures?`))) return;
    classesEdited(() => { classifier!.classes = classifier!.classes.filter((c) => c.id !== classId); });
  },
  onRemovePicture: (classId: string, pictureId: string) => {
    const entry = classifier?.classes.find((c) => c.id === classId);
    if (entry) classesEdited(() => { entry.pictures = entry.pictures.filter((p) => p.id !== pictureId); });
  },
};

/** Applies an edit of the classes: earlier messages and the result go, an imported head no longer fits, refit later. */
function classesEdited(edit: () => void): void {
  if (!classifier) return;
  clearMessages();
  edit();
  classifier.importedHead = null;
  hideResult();
  refresh();
  void persist();
}

function hideResult(): void {
  ui.result.hidden = true;
  delete document.body.dataset.result;
}

// ---- Loading a model ----

function showDownload(received: number, total: number): void {
  if (total > 0) ui.modelProgress.value = received / total;
  ui.modelStatus.textContent = `Loading the model… ${(received / 1e6).toFixed(1)} MB${total ? ` of ${(total / 1e6).toFixed(1)} MB` : ''}`;
}

/** Forgets the classes shown for the previous model (they belong to it, and come back with it). */
function clearModelViews(): void {
  ui.classList.replaceChildren();
  ui.classesHint.textContent = '';
  ui.runtimeInfo.textContent = '';
  showMessage(ui.classError, null);
  showMessage(ui.queryError, null);
}

function startLoading(message: string): void {
  setState('loading');
  clearModelViews();
  ui.modelProgress.hidden = false;
  ui.modelProgress.value = 0;
  ui.modelStatus.textContent = message;
  showMessage(ui.modelError, null);
  showMessage(ui.modelNotice, null);
  hideResult();
}

async function useModel(bytes: Uint8Array, name: string, overrides: PreprocessingOverrides): Promise<void> {
  modelBytes = { bytes, name };
  ui.modelProgress.removeAttribute('value'); // indeterminate while the runtime starts
  ui.modelStatus.textContent = `Preparing ${name}…`;
  if (backbone) await backbone.release().catch(() => undefined);
  backbone = null;
  classifier = null;
  let info;
  try {
    info = readOnnxInfo(bytes);
  } catch (err) {
    throw new ModelUnusableError(`${name} is not an ONNX model (${(err as Error).message}).`);
  }
  const resolved = resolveForPage(name, info, overrides);
  const preprocessing = resolved.preprocessing;
  backbone = await Backbone.create(bytes, preprocessing, params.get('provider') === 'wasm' ? 'wasm' : 'auto');
  if (!backbone.outputNames.includes(preprocessing.outputName)) {
    throw new ModelUnusableError(`This model has no "${preprocessing.outputName}" output (its outputs: ${backbone.outputNames.join(', ')}).`);
  }
  const shapeDim = info.outputs.find((o) => o.name === preprocessing.outputName)?.shape?.at(-1);
  let featureDim = resolved.featureDim ?? (typeof shapeDim === 'number' ? shapeDim : null);
  if (featureDim === null) {
    const size = preprocessing.size;
    featureDim = (await backbone.features([new Uint8ClampedArray(size * size * 4)])).dim;
  }
  const identity: ModelIdentity = { sha256: sha256Hex(bytes), featureDim, arch: resolved.arch };
  let restored: ClassifierState | null = null;
  try {
    restored = await loadStoredClassifier(identity);
  } catch (err) {
    showMessage(ui.classError, `The classes kept in this browser could not be read (${(err as Error).message}).`);
  }
  classifier = restored ?? { model: identity, name: DEFAULT_CLASSIFIER_NAME, augment: supportAugment, classes: [], importedHead: null };

  ui.modelProgress.hidden = true;
  const arch = resolved.arch ? `${resolved.arch}, ` : '';
  ui.modelStatus.textContent = `Model ready: ${name} (${arch}${featureDim} features; ${describePreprocessing(preprocessing)}).`;
  if (resolved.assumed.length > 0) {
    showMessage(ui.modelNotice, `This model does not say how to prepare pictures, so the page assumes: ${resolved.assumed.join(', ')}. ` +
      'If the predictions look wrong, describe the model under “Preprocessing for a model without metadata”.');
  }
  const { provider, threads } = backbone.info;
  probe.provider = provider;
  ui.runtimeInfo.textContent = provider === 'webgpu' ? 'Running on WebGPU.' : `Running on WebAssembly with ${threads} thread${threads === 1 ? '' : 's'}${threads === 1 && !crossOriginIsolated ? ' (the page is not cross-origin isolated)' : ''}.`;
  refresh();
  if (restored && restored.classes.length > 0) ui.classesHint.textContent += ` (${restored.classes.length} classes restored from this browser.)`;
}

function showModelFailure(err: unknown): void {
  backbone = null;
  classifier = null;
  ui.modelProgress.hidden = true;
  clearModelViews();
  setState('model-error');
  ui.modelStatus.textContent = 'No model loaded.';
  const message = err instanceof ModelUnusableError ? err.message : `The model could not be loaded: ${(err as Error).message ?? String(err)}`;
  showMessage(ui.modelError, `${message} Choose another model file.`);
}

async function loadFromUrl(url: string, overrides: PreprocessingOverrides): Promise<void> {
  startLoading('Loading the model…');
  try {
    const bytes = await fetchModel(url, showDownload);
    if (!bytes) {
      ui.modelProgress.hidden = true;
      setState('no-model');
      ui.modelStatus.textContent = 'No model is served with this page. Choose an exported .onnx file to start (it stays on your device).';
      return;
    }
    await useModel(bytes, decodeURIComponent(url.split('/').pop() || url), overrides);
  } catch (err) {
    showModelFailure(err);
  }
}

async function loadFromFile(file: File, overrides: PreprocessingOverrides): Promise<void> {
  startLoading(`Reading ${file.name}…`);
  try {
    await useModel(new Uint8Array(await file.arrayBuffer()), file.name, overrides);
  } catch (err) {
    showModelFailure(err);
  }
}

// ---- Wiring ----

function currentOverrides(): PreprocessingOverrides {
  return readSettingsForm();
}

ui.modelFile.addEventListener('change', () => {
  const file = ui.modelFile.files?.[0];
  ui.modelFile.value = '';
  if (file) void loadFromFile(file, currentOverrides());
});

ui.settingsForm.addEventListener('submit', (event) => {
  event.preventDefault();
  let overrides: PreprocessingOverrides;
  try {
    overrides = currentOverrides();
  } catch (err) {
    showMessage(ui.modelError, (err as Error).message);
    return;
  }
  if (modelBytes) {
    const { bytes, name } = modelBytes;
    startLoading(`Preparing ${name}…`);
    useModel(bytes, name, overrides).catch(showModelFailure);
  } else void loadFromUrl(params.get('model') ?? DEFAULT_MODEL_URL, overrides);
});

ui.newClassForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!classifier) return;
  try {
    clearMessages();
    const name = checkClassName(classifier, ui.newClassName.value);
    classifier.classes.push({ id: newId(), name, pictures: [] });
    classifier.importedHead = null;
    ui.newClassName.value = '';
    hideResult();
    refresh();
    void persist();
  } catch (err) {
    showMessage(ui.classError, (err as Error).message);
  }
});

ui.saveClassifier.addEventListener('click', () => {
  if (!classifier || readiness(classifier).kind !== 'ready') return;
  clearMessages();
  let text: string;
  try {
    text = serializeClassifier(classifier);
  } catch (err) {
    showMessage(ui.classError, `The classifier could not be saved: ${(err as Error).message}`);
    return;
  }
  const blob = new Blob([text], { type: 'application/json' });
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = 'classifier.json';
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
});

ui.loadClassifier.addEventListener('change', () => {
  const file = ui.loadClassifier.files?.[0];
  ui.loadClassifier.value = '';
  if (!file || !classifier) return;
  clearMessages();
  const model = classifier.model;
  file.text().then((text) => {
    classifier = parseClassifier(text, model, file.name);
    hideResult();
    refresh();
    return persist();
  }).catch((err: Error) => showMessage(ui.classError, err.message));
});

ui.clearClasses.addEventListener('click', () => {
  if (!classifier || classifier.classes.length === 0) return;
  if (!confirm(`Remove all ${classifier.classes.length} classes and their pictures from this browser?`)) return;
  clearMessages();
  classifier.classes = [];
  classifier.importedHead = null;
  hideResult();
  refresh();
  void deleteStoredClassifier(classifier.model).catch(() => undefined);
});

ui.queryFile.addEventListener('change', () => {
  const file = ui.queryFile.files?.[0];
  ui.queryFile.value = '';
  if (file) void classify(file, file.name);
});
makeDropTarget(ui.queryDrop, (files) => void classify(files[0], files[0].name));
ui.queryCamera.hidden = !cameraAvailable();
ui.queryCamera.addEventListener('click', () => void camera.capture().then((blob) => blob && classify(blob, 'camera.png')));

// ---- Start ----

let initialOverrides: PreprocessingOverrides = {};
/** Augmented copies per support picture for a new classifier (a restored or loaded one keeps its own). */
let supportAugment = 0;
try {
  supportAugment = augmentFromParams(params);
  initialOverrides = overridesFromParams(params);
  fillSettingsForm(initialOverrides);
} catch (err) {
  showMessage(ui.modelNotice, `Ignoring the page's URL settings: ${(err as Error).message}`);
}
void loadFromUrl(params.get('model') ?? DEFAULT_MODEL_URL, initialOverrides);

/** Rendering of the page's lists (classes, support pictures, probabilities) from the classifier state. */
import { type ClassEntry, MIN_PICTURES_PER_CLASS } from './classifier.js';

export function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, children: (Node | string)[] = []): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  Object.assign(el, props);
  for (const child of children) el.append(child);
  return el;
}

/** Shows a message in an alert paragraph, or hides it when the message is null. */
export function showMessage(target: HTMLElement, message: string | null): void {
  target.textContent = message ?? '';
  target.hidden = message === null;
}

export interface ClassCardActions {
  onAddFiles(classId: string, files: File[]): void;
  onCamera(classId: string): void;
  onRemoveClass(classId: string): void;
  onRemovePicture(classId: string, pictureId: string): void;
}

/** Accepts dropped files on an element, highlighting it while something is dragged over it. */
export function makeDropTarget(target: HTMLElement, onFiles: (files: File[]) => void): void {
  let depth = 0;
  target.addEventListener('dragenter', (event) => {
    event.preventDefault();
    depth++;
    target.classList.add('dragging');
  });
  target.addEventListener('dragover', (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
  });
  target.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) target.classList.remove('dragging');
  });
  target.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    target.classList.remove('dragging');
    const files = Array.from(event.dataTransfer?.files ?? []);
    if (files.length > 0) onFiles(files);
  });
}

function classCard(entry: ClassEntry, index: number, actions: ClassCardActions, cameraOn: boolean): HTMLLIElement {
  const inputId = `class-files-${entry.id}`;
  const headingId = `class-name-${entry.id}`;
  const count = entry.pictures.length;
  const lacking = count < MIN_PICTURES_PER_CLASS;
  const countText = `${count} picture${count === 1 ? '' : 's'}`;

  const thumbs = element('ul', { className: 'thumbs' });
  thumbs.setAttribute('aria-label', `Pictures of ${entry.name}`);
  entry.pictures.forEach((picture, i) => {
    const img = element('img', { src: picture.thumbnail || '', alt: `${entry.name}, picture ${i + 1}` });
    const remove = element('button', { type: 'button', className: 'remove', textContent: '×', title: 'Remove this picture' });
    remove.setAttribute('aria-label', `Remove picture ${i + 1} of ${entry.name}`);
    remove.addEventListener('click', () => actions.onRemovePicture(entry.id, picture.id));
    thumbs.append(element('li', {}, [img, remove]));
  });

  const fileInput = element('input', { type: 'file', id: inputId, accept: 'image/*', multiple: true, className: 'visually-hidden' });
  fileInput.dataset.classIndex = String(index);
  fileInput.addEventListener('change', () => {
    const files = Array.from(fileInput.files ?? []);
    fileInput.value = '';
    if (files.length > 0) actions.onAddFiles(entry.id, files);
  });
  const pick = element('label', { className: 'button', htmlFor: inputId, textContent: 'Add pictures…' });
  const camera = element('button', { type: 'button', textContent: 'Take a photo', hidden: !cameraOn });
  camera.addEventListener('click', () => actions.onCamera(entry.id));
  const remove = element('button', { type: 'button', className: 'danger', textContent: 'Remove class' });
  remove.setAttribute('aria-label', `Remove class ${entry.name}`);
  remove.addEventListener('click', () => actions.onRemoveClass(entry.id));

  const heading = element('h3', { id: headingId, textContent: entry.name });
  const countEl = element('span', { className: lacking ? 'count lacking' : 'count', textContent: lacking ? `${countText} — add one` : countText });
  const emptyHint = element('p', { className: 'hint', textContent: 'Drop pictures on this card, or add them below.' });
  const card = element('li', { className: 'class-card' }, [
    element('header', {}, [heading, countEl]),
    count === 0 ? emptyHint : thumbs,
    element('div', { className: 'row' }, [fileInput, pick, camera, remove]),
  ]);
  card.setAttribute('aria-labelledby', headingId);
  card.dataset.className = entry.name;
  makeDropTarget(card, (files) => actions.onAddFiles(entry.id, files));
  return card;
}

export function renderClasses(list: HTMLElement, classes: ClassEntry[], actions: ClassCardActions, cameraOn: boolean): void {
  list.replaceChildren(...classes.map((entry, i) => classCard(entry, i, actions, cameraOn)));
}

/** The classification result: the predicted class and one bar per class, most probable first. */
export function renderProbabilities(label: HTMLElement, list: HTMLElement, names: string[], probabilities: Float32Array): void {
  const order = names.map((_, i) => i).sort((a, b) => probabilities[b] - probabilities[a]);
  const best = order[0];
  const percent = (p: number) => `${(p * 100).toFixed(1)}%`;
  label.replaceChildren('Most likely: ', element('strong', { textContent: names[best] }), ` (${percent(probabilities[best])})`);
  list.replaceChildren(
    ...order.map((i) => {
      const fill = element('div', { className: 'fill' });
      fill.style.width = `${Math.max(0, Math.min(100, probabilities[i] * 100))}%`;
      const track = element('div', { className: 'track' }, [fill]);
      track.setAttribute('aria-hidden', 'true');
      const item = element('li', { className: i === best ? 'best' : '' }, [
        element('span', { className: 'name', textContent: names[i] }),
        track,
        element('span', { className: 'value', textContent: percent(probabilities[i]) }),
      ]);
      item.dataset.className = names[i];
      item.dataset.probability = String(probabilities[i]);
      return item;
    }),
  );
}

/** Taking a photo with the device's camera in a modal dialog (only where getUserMedia exists: https or localhost). */
import { captureFrame } from './images.js';
import { byId, showMessage } from './view.js';

export class Camera {
  private readonly dialog = byId<HTMLDialogElement>('camera-dialog');
  private readonly video = byId<HTMLVideoElement>('camera-video');
  private readonly error = byId<HTMLParagraphElement>('camera-error');
  private readonly captureButton = byId<HTMLButtonElement>('camera-capture');
  private readonly cancelButton = byId<HTMLButtonElement>('camera-cancel');

  /** Opens the camera and resolves with a PNG of the frame the user keeps, or null if they cancel. */
  async capture(): Promise<Blob | null> {
    showMessage(this.error, null);
    this.captureButton.disabled = true;
    this.dialog.showModal();
    let stream: MediaStream | null = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      this.video.srcObject = stream;
      await this.video.play();
      this.captureButton.disabled = false;
    } catch (err) {
      showMessage(this.error, `The camera could not be opened (${(err as Error).message}). Choose a picture file instead.`);
    }
    try {
      const keep = await new Promise<boolean>((resolve) => {
        const done = (value: boolean) => () => resolve(value);
        this.captureButton.onclick = done(true);
        this.cancelButton.onclick = done(false);
        this.dialog.oncancel = done(false);
      });
      return keep ? await captureFrame(this.video) : null;
    } finally {
      stream?.getTracks().forEach((track) => track.stop());
      this.video.srcObject = null;
      if (this.dialog.open) this.dialog.close();
    }
  }
}

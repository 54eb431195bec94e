/**
 * Training curves as a self-contained SVG (no plotting dependency): one panel per metric, one line per series
 * (for example Gen-0 and Gen-1), so that a user can look at the run rather than read the log. Each panel has a
 * title, an optional note, a legend row above its frame (never on the data), labelled axes, and its points inside
 * the frame.
 */

export interface Series {
  label: string;
  /** y value per x (epoch, possibly fractional); null or NaN values are gaps (the line goes on past them). */
  points: { x: number; y: number | null }[];
  /** Draw a dot at each point (default true; dense per-step series set false). */
  markers?: boolean;
}

export interface Panel {
  title: string;
  /** One line under the title, saying how to read the panel (for example the chance level). */
  note?: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** A dashed horizontal line (kept inside the y range), for example the chance level. */
  reference?: { y: number; label: string };
  /** Shown in the frame when no series has a point. */
  empty?: string;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const REFERENCE_COLOUR = '#777';
export const PANEL_W = 460;
export const PANEL_H = 300;
/** Frame of a panel, relative to the panel's corner: title, note and legend above it, tick labels and axis labels outside it. */
export const FRAME = { left: 64, right: 16, top: 70, bottom: 44 };
const DOT_R = 2.5;
const TITLE_H = 30;

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Rounded tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
  return out;
}

const finite = (p: { y: number | null }): p is { x: number; y: number } => p.y !== null && Number.isFinite(p.y);
/** About how wide a label is at font size 11 (no font metrics in a plain SVG writer). */
const textWidth = (s: string) => s.length * 6.2;

function panelSvg(panel: Panel, ox: number, oy: number): string {
  const parts: string[] = [];
  const frame = { x: ox + FRAME.left, y: oy + FRAME.top, w: PANEL_W - FRAME.left - FRAME.right, h: PANEL_H - FRAME.top - FRAME.bottom };
  parts.push(`<text x="${ox + PANEL_W / 2}" y="${oy + 18}" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(panel.title)}</text>`);
  if (panel.note) parts.push(`<text x="${ox + PANEL_W / 2}" y="${oy + 35}" text-anchor="middle" font-size="11" fill="#555">${escapeXml(panel.note)}</text>`);
  // Legend: one row between the note and the frame.
  const entries = [
    ...panel.series.map((s, i) => ({ label: s.label, colour: PALETTE[i % PALETTE.length]!, dashed: false })),
    ...(panel.reference ? [{ label: panel.reference.label, colour: REFERENCE_COLOUR, dashed: true }] : []),
  ];
  let lx = frame.x;
  const ly = oy + FRAME.top - 12;
  for (const e of entries) {
    parts.push(`<g class="legend"><line x1="${lx}" x2="${lx + 16}" y1="${ly - 4}" y2="${ly - 4}" stroke="${e.colour}" stroke-width="2.5"${e.dashed ? ' stroke-dasharray="4 3"' : ''}/>` +
      `<text x="${lx + 20}" y="${ly}" font-size="11">${escapeXml(e.label)}</text></g>`);
    lx += 20 + textWidth(e.label) + 14;
  }
  parts.push(`<rect class="frame" x="${frame.x}" y="${frame.y}" width="${frame.w}" height="${frame.h}" fill="none" stroke="#999"/>`);
  parts.push(`<text class="axis-label" x="${frame.x + frame.w / 2}" y="${oy + PANEL_H - 8}" text-anchor="middle" font-size="12">${escapeXml(panel.xLabel)}</text>`);
  const yLabelX = ox + 16, yLabelY = frame.y + frame.h / 2;
  parts.push(`<text class="axis-label" x="${yLabelX}" y="${yLabelY}" text-anchor="middle" font-size="12" transform="rotate(-90 ${yLabelX} ${yLabelY})">${escapeXml(panel.yLabel)}</text>`);

  const pts = panel.series.flatMap((s) => s.points.filter(finite));
  if (pts.length === 0) {
    parts.push(`<text x="${frame.x + frame.w / 2}" y="${frame.y + frame.h / 2}" text-anchor="middle" font-size="12" fill="#666">${escapeXml(panel.empty ?? 'no data')}</text>`);
    return parts.join('\n');
  }
  const xs = pts.map((p) => p.x);
  const ys = [...pts.map((p) => p.y), ...(panel.reference ? [panel.reference.y] : [])];
  let [xLo, xHi] = [Math.min(...xs), Math.max(...xs)];
  let [yLo, yHi] = [Math.min(...ys), Math.max(...ys)];
  if (xHi === xLo) { xLo -= 1; xHi += 1; }
  if (yHi === yLo) { yLo -= Math.abs(yLo) * 0.1 + 1e-3; yHi += Math.abs(yHi) * 0.1 + 1e-3; }
  // Margins inside the frame, so that no dot sits on (or is cut by) the frame.
  const xPad = (xHi - xLo) * 0.04, yPad = (yHi - yLo) * 0.08;
  xLo -= xPad; xHi += xPad; yLo -= yPad; yHi += yPad;
  const sx = (x: number) => frame.x + ((x - xLo) / (xHi - xLo)) * frame.w;
  const sy = (y: number) => frame.y + (1 - (y - yLo) / (yHi - yLo)) * frame.h;
  for (const t of ticks(yLo, yHi)) {
    parts.push(`<line x1="${frame.x}" x2="${frame.x + frame.w}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${frame.x - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${t}</text>`);
  }
  // Whole epochs, unless the axis spans less than two (one Gen-1 epoch): then fractions too.
  for (const t of ticks(xLo, xHi).filter((v) => Number.isInteger(v) || xHi - xLo < 2)) {
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${frame.y + frame.h + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  if (panel.reference) {
    const y = sy(panel.reference.y).toFixed(1);
    parts.push(`<line class="reference" x1="${frame.x}" x2="${frame.x + frame.w}" y1="${y}" y2="${y}" stroke="${REFERENCE_COLOUR}" stroke-dasharray="4 3"/>`);
  }
  panel.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const valid = s.points.filter(finite);
    const label = escapeXml(s.label);
    if (valid.length > 1) {
      const d = valid.map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
      parts.push(`<path class="series" data-series="${label}" d="${d}" fill="none" stroke="${colour}" stroke-width="${s.markers === false ? 1.5 : 2}"/>`);
    }
    if (s.markers !== false || valid.length === 1) {
      for (const p of valid) parts.push(`<circle data-series="${label}" cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="${DOT_R}" fill="${colour}"/>`);
    }
  });
  return parts.join('\n');
}

/** Lays panels out two per row under a title. */
export function renderCurvesSvg(panels: Panel[], title: string): string {
  const cols = Math.min(2, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const width = cols * PANEL_W;
  const height = rows * PANEL_H + TITLE_H;
  const body = panels.map((p, i) => panelSvg(p, (i % cols) * PANEL_W, TITLE_H + Math.floor(i / cols) * PANEL_H)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="16" font-weight="700">${escapeXml(title)}</text>`,
    body,
    '</svg>',
  ].join('\n');
}

/**
 * Per-epoch training curves as a self-contained SVG (no plotting dependency): one panel per metric, one line
 * per series (for example Gen-0 and Gen-1), so that a user can look at the run rather than read the log.
 */

export interface Series {
  label: string;
  /** y value per x (epoch); NaN or null gaps are skipped. */
  points: { x: number; y: number | null }[];
}

export interface Panel {
  title: string;
  series: Series[];
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const PANEL_W = 420;
const PANEL_H = 260;
const MARGIN = { left: 56, right: 16, top: 34, bottom: 40 };

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

function panelSvg(panel: Panel, ox: number, oy: number): string {
  const pts = panel.series.flatMap((s) => s.points.filter((p) => p.y !== null && Number.isFinite(p.y)));
  const parts: string[] = [];
  parts.push(`<text x="${ox + PANEL_W / 2}" y="${oy + 20}" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(panel.title)}</text>`);
  if (pts.length === 0) {
    parts.push(`<text x="${ox + PANEL_W / 2}" y="${oy + PANEL_H / 2}" text-anchor="middle" font-size="12" fill="#666">no data</text>`);
    return parts.join('\n');
  }
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y as number);
  let [xLo, xHi] = [Math.min(...xs), Math.max(...xs)];
  let [yLo, yHi] = [Math.min(...ys), Math.max(...ys)];
  if (xHi === xLo) { xLo -= 1; xHi += 1; }
  if (yHi === yLo) { yLo -= Math.abs(yLo) * 0.1 + 1e-3; yHi += Math.abs(yHi) * 0.1 + 1e-3; }
  const pad = (yHi - yLo) * 0.05;
  yLo -= pad; yHi += pad;
  const plotW = PANEL_W - MARGIN.left - MARGIN.right;
  const plotH = PANEL_H - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => ox + MARGIN.left + ((x - xLo) / (xHi - xLo)) * plotW;
  const sy = (y: number) => oy + MARGIN.top + (1 - (y - yLo) / (yHi - yLo)) * plotH;
  parts.push(`<rect x="${ox + MARGIN.left}" y="${oy + MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  for (const t of ticks(yLo, yHi)) {
    parts.push(`<line x1="${ox + MARGIN.left}" x2="${ox + MARGIN.left + plotW}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${ox + MARGIN.left - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${t}</text>`);
  }
  for (const t of ticks(xLo, xHi).filter((v) => Number.isInteger(v))) {
    parts.push(`<text x="${sx(t)}" y="${oy + MARGIN.top + plotH + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  parts.push(`<text x="${ox + MARGIN.left + plotW / 2}" y="${oy + PANEL_H - 6}" text-anchor="middle" font-size="11">epoch</text>`);
  panel.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const valid = s.points.filter((p) => p.y !== null && Number.isFinite(p.y));
    if (valid.length > 1) {
      const d = valid.map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y as number).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    }
    for (const p of valid) parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y as number).toFixed(1)}" r="2.5" fill="${colour}"/>`);
    const ly = oy + MARGIN.top + 14 + i * 16;
    parts.push(`<rect x="${ox + MARGIN.left + 8}" y="${ly - 9}" width="12" height="3" fill="${colour}"/>`);
    parts.push(`<text x="${ox + MARGIN.left + 24}" y="${ly - 4}" font-size="11">${escapeXml(s.label)}</text>`);
  });
  return parts.join('\n');
}

/** Lays panels out two per row. */
export function renderCurvesSvg(panels: Panel[], title: string): string {
  const cols = Math.min(2, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const width = cols * PANEL_W;
  const height = rows * PANEL_H + 30;
  const body = panels.map((p, i) => panelSvg(p, (i % cols) * PANEL_W, 30 + Math.floor(i / cols) * PANEL_H)).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="16" font-weight="700">${escapeXml(title)}</text>`,
    body,
    '</svg>',
  ].join('\n');
}

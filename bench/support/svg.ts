// Small SVG charts for the bench results (no dependency): a latency strip chart and a timeline.
// Written by hand so the pictures are plain files a browser or GitHub shows as they are.

const FONT_FAMILY = 'font-family="system-ui, sans-serif"';
const FONT = `${FONT_FAMILY} font-size="12"`;
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The opening of a chart: its size, a white background and the title. */
function open(width: number, height: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" ${FONT_FAMILY} font-size="15" font-weight="bold">${escape(title)}</text>`,
  ];
}

/** A tidy axis end: the next of 1, 2, 5 × 10^n at or above value. */
function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function axis(x0: number, width: number, y: number, max: number, unit: string): string {
  const ticks = 10;
  const parts = [`<line x1="${x0}" y1="${y}" x2="${x0 + width}" y2="${y}" stroke="#444"/>`];
  for (let i = 0; i <= ticks; i++) {
    const x = x0 + (width * i) / ticks;
    const value = (max * i) / ticks;
    parts.push(`<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 4}" stroke="#444"/>`);
    parts.push(`<text x="${x}" y="${y + 16}" text-anchor="middle" ${FONT}>${Number(value.toFixed(2))}</text>`);
  }
  parts.push(`<text x="${x0 + width}" y="${y + 32}" text-anchor="end" ${FONT}>${escape(unit)}</text>`);
  return parts.join('\n');
}

export interface LatencyRow {
  label: string;
  values: number[];
  p50: number;
  p95: number;
  goalP50?: number;
  goalP95?: number;
}

export interface Band {
  label: string;
  from: number;
  to: number;
}

/** One row of dots per scenario, its P50 and P95 marked, goals as dashed lines, reference bands shaded. */
export function latencyChart(title: string, rows: LatencyRow[], bands: Band[] = []): string {
  const left = 190;
  const width = 640;
  const rowHeight = 48;
  const top = 44;
  const max = niceMax(Math.max(...rows.flatMap((r) => r.values), ...bands.map((b) => b.to), 1));
  const x = (v: number) => left + (width * v) / max;
  const height = top + rows.length * rowHeight + 70 + bands.length * 16;
  const parts: string[] = [
    ...open(left + width + 40, height, title),
  ];
  const bottom = top + rows.length * rowHeight;
  bands.forEach((band, i) => {
    const shade = i % 2 === 0 ? '#fde2c8' : '#f9c99a';
    parts.push(`<rect x="${x(band.from)}" y="${top - 6}" width="${x(band.to) - x(band.from)}" height="${bottom - top + 6}" fill="${shade}" opacity="0.7"/>`);
    parts.push(`<rect x="${left}" y="${bottom + 42 + i * 16}" width="10" height="10" fill="${shade}"/>`);
    parts.push(`<text x="${left + 16}" y="${bottom + 51 + i * 16}" ${FONT}>${escape(band.label)}</text>`);
  });
  rows.forEach((row, i) => {
    const y = top + i * rowHeight + rowHeight / 2;
    parts.push(`<text x="${left - 10}" y="${y + 4}" text-anchor="end" ${FONT}>${escape(row.label)}</text>`);
    parts.push(`<line x1="${left}" y1="${y}" x2="${left + width}" y2="${y}" stroke="#ddd"/>`);
    for (const v of row.values) parts.push(`<circle cx="${x(v)}" cy="${y}" r="4" fill="#1f6feb" fill-opacity="0.55"/>`);
    const single = row.values.length === 1;
    for (const [name, v] of [['P50', row.p50], ['P95', row.p95]] as const) {
      if (!Number.isFinite(v) || (single && name === 'P95')) continue;
      parts.push(`<line x1="${x(v)}" y1="${y - 14}" x2="${x(v)}" y2="${y + 14}" stroke="#0b3d91" stroke-width="2"/>`);
      parts.push(`<text x="${x(v)}" y="${y - 17}" text-anchor="middle" ${FONT_FAMILY} font-size="10">${single ? '' : `${name} `}${v.toFixed(1)} s</text>`);
    }
    // The P50 goal's label below the row, the P95 goal's above it: they may be close together.
    for (const [name, v, labelY] of [['goal P50', row.goalP50, y + 20], ['goal P95', row.goalP95, y - 14]] as const) {
      if (v === undefined) continue;
      parts.push(`<line x1="${x(v)}" y1="${y - 20}" x2="${x(v)}" y2="${y + 20}" stroke="#c00" stroke-dasharray="4 3"/>`);
      parts.push(`<text x="${x(v) + 3}" y="${labelY}" ${FONT_FAMILY} font-size="9" fill="#c00">${single ? 'goal' : name}</text>`);
    }
  });
  parts.push(axis(left, width, bottom + 4, max, 'seconds after the VM was created'));
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export interface Span {
  label: string;
  start: number;
  end: number;
  /** 'work' is something running; 'wait' is time nothing on the path does anything (a poll, a relist). */
  kind: 'work' | 'wait' | 'api';
}

const SPAN_COLOURS: Record<Span['kind'], string> = { work: '#2da44e', wait: '#d1242f', api: '#1f6feb' };

/** One bar per span on its own row, in order: the path one VM's start takes. */
export function timelineChart(title: string, spans: Span[], unit = 'seconds after the VM was created'): string {
  const left = 300;
  const width = 560;
  const rowHeight = 20;
  const top = 44;
  const max = niceMax(Math.max(...spans.map((s) => s.end), 0.1));
  const x = (v: number) => left + (width * v) / max;
  const bottom = top + spans.length * rowHeight;
  const height = bottom + 70;
  const parts: string[] = [
    ...open(left + width + 60, height, title),
  ];
  spans.forEach((span, i) => {
    const y = top + i * rowHeight;
    const w = Math.max(1.5, x(span.end) - x(span.start));
    parts.push(`<text x="${left - 8}" y="${y + 14}" text-anchor="end" ${FONT}>${escape(span.label)}</text>`);
    parts.push(`<rect x="${x(span.start)}" y="${y + 3}" width="${w}" height="${rowHeight - 6}" fill="${SPAN_COLOURS[span.kind]}"/>`);
    parts.push(`<text x="${x(span.start) + w + 4}" y="${y + 14}" ${FONT_FAMILY} font-size="10">${((span.end - span.start) * 1000).toFixed(0)} ms</text>`);
  });
  parts.push(axis(left, width, bottom + 4, max, unit));
  const legend = (['api', 'work', 'wait'] as const).map((kind, i) => {
    const lx = 10 + i * 210;
    const name = { api: 'API / controllers', work: 'node: runtime, launcher', wait: 'waiting (relist, retry)' }[kind];
    return `<rect x="${lx}" y="${height - 16}" width="10" height="10" fill="${SPAN_COLOURS[kind]}"/><text x="${lx + 14}" y="${height - 7}" ${FONT}>${name}</text>`;
  });
  parts.push(...legend);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export interface Bar {
  label: string;
  value: number;
  /** A reference drawn beside the bar (KubeVirt's figure). */
  reference?: number;
}

/** Horizontal bars, each with its reference as a lighter bar beneath. */
export function barChart(title: string, bars: Bar[], unit: string, referenceLabel: string): string {
  const left = 190;
  const width = 560;
  const rowHeight = 34;
  const top = 44;
  const max = niceMax(Math.max(...bars.flatMap((b) => [b.value, b.reference ?? 0])));
  const x = (v: number) => left + (width * v) / max;
  const bottom = top + bars.length * rowHeight;
  const height = bottom + 70;
  const parts: string[] = [
    ...open(left + width + 80, height, title),
  ];
  bars.forEach((bar, i) => {
    const y = top + i * rowHeight;
    parts.push(`<text x="${left - 8}" y="${y + 14}" text-anchor="end" ${FONT}>${escape(bar.label)}</text>`);
    parts.push(`<rect x="${left}" y="${y + 2}" width="${x(bar.value) - left}" height="13" fill="#1f6feb"/>`);
    parts.push(`<text x="${x(bar.value) + 4}" y="${y + 13}" ${FONT_FAMILY} font-size="10">${bar.value.toFixed(0)} ${escape(unit)}</text>`);
    if (bar.reference !== undefined) {
      parts.push(`<rect x="${left}" y="${y + 17}" width="${x(bar.reference) - left}" height="9" fill="#f0a35e"/>`);
      parts.push(`<text x="${x(bar.reference) + 4}" y="${y + 26}" ${FONT_FAMILY} font-size="10">${bar.reference.toFixed(0)} ${escape(unit)}</text>`);
    }
  });
  parts.push(axis(left, width, bottom + 4, max, unit));
  parts.push(`<rect x="10" y="${height - 16}" width="10" height="10" fill="#1f6feb"/><text x="24" y="${height - 7}" ${FONT}>kubevm (measured)</text>`);
  parts.push(`<rect x="170" y="${height - 16}" width="10" height="10" fill="#f0a35e"/><text x="184" y="${height - 7}" ${FONT}>${escape(referenceLabel)}</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export interface ScalePoint {
  vms: number;
  heapMiB: number;
  rssMiB: number;
}

/** Memory against VM count: kubevm's heap and RSS as lines with points, a reference line beside them. */
export function scaleChart(title: string, points: ScalePoint[], reference: { label: string; mibAt: (vms: number) => number }): string {
  const left = 70;
  const width = 600;
  const top = 40;
  const plotHeight = 300;
  const maxVms = niceMax(Math.max(...points.map((p) => p.vms), 1));
  const maxMiB = niceMax(Math.max(...points.map((p) => p.rssMiB), reference.mibAt(maxVms)));
  const x = (vms: number) => left + (width * vms) / maxVms;
  const y = (mib: number) => top + plotHeight - (plotHeight * mib) / maxMiB;
  const height = top + plotHeight + 80;
  const parts: string[] = [
    ...open(left + width + 40, height, title),
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotHeight}" stroke="#444"/>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const mib = (maxMiB * i) / 5;
    parts.push(`<text x="${left - 6}" y="${y(mib) + 4}" text-anchor="end" ${FONT}>${Number(mib.toFixed(0))}</text>`);
    parts.push(`<line x1="${left}" y1="${y(mib)}" x2="${left + width}" y2="${y(mib)}" stroke="#eee"/>`);
  }
  parts.push(`<text x="12" y="${top + plotHeight / 2}" ${FONT} transform="rotate(-90 12 ${top + plotHeight / 2})" text-anchor="middle">MiB</text>`);
  parts.push(`<line x1="${x(0)}" y1="${y(reference.mibAt(0))}" x2="${x(maxVms)}" y2="${y(reference.mibAt(maxVms))}" stroke="#f0a35e" stroke-width="2" stroke-dasharray="6 4"/>`);
  const series: Array<[keyof ScalePoint, string, string]> = [
    ['rssMiB', '#1f6feb', 'kubevm controller RSS'],
    ['heapMiB', '#2da44e', 'kubevm controller heap (used)'],
  ];
  for (const [key, colour] of series) {
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.map((p) => `${x(p.vms)},${y(p[key])}`).join(' ')}"/>`);
    for (const p of points) parts.push(`<circle cx="${x(p.vms)}" cy="${y(p[key])}" r="3.5" fill="${colour}"/>`);
  }
  parts.push(axis(left, width, top + plotHeight, maxVms, 'VMs'));
  const legend: Array<[string, string]> = [...series.map(([, colour, label]) => [colour, label] as [string, string]), ['#f0a35e', reference.label]];
  legend.forEach(([colour, label], i) => {
    parts.push(`<rect x="${10 + i * 220}" y="${height - 16}" width="10" height="10" fill="${colour}"/><text x="${24 + i * 220}" y="${height - 7}" ${FONT}>${escape(label)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

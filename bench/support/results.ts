// The figures a bench produces, written to bench/results/<bench>.json and printed as a table,
// each beside its goal and KubeVirt's published figure (bench/support/kubevirt.ts).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reference } from './kubevirt.js';

export const benchDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const resultsDir = path.join(benchDir, 'results');

export interface Goal {
  value: number;
  /** 'max': the figure meets the goal when at most value; 'min': when at least. */
  kind: 'max' | 'min';
}

export interface Figure {
  figure: string;
  value: number;
  unit: string;
  goal?: Goal;
  kubevirt?: Reference;
  /** Where the time or memory goes, or why a goal is missed. */
  note?: string;
}

export interface BenchResult {
  bench: string;
  command: string;
  commit: string;
  date: string;
  conditions: Record<string, unknown>;
  figures: Figure[];
  /** Bench-specific detail (timelines, per-VM values), kept for the pictures and for reading. */
  detail?: unknown;
}

export function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', cwd: benchDir }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', cwd: benchDir }).trim() !== '';
    return dirty ? `${sha}+changes` : sha;
  } catch {
    return 'unknown';
  }
}

/** What every result records about the machine it ran on. */
export function machine(): Record<string, unknown> {
  return { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), loadAverage1m: Number(loadavg()[0]?.toFixed(2)) };
}

export function goalMet(figure: Figure): boolean | undefined {
  if (!figure.goal || !Number.isFinite(figure.value)) return undefined;
  return figure.goal.kind === 'max' ? figure.value <= figure.goal.value : figure.value >= figure.goal.value;
}

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  const digits = Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

export function writeResult(result: BenchResult): string {
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${result.bench}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

export function readResults(): BenchResult[] {
  let names: string[];
  try {
    names = readdirSync(resultsDir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  return names.sort().map((name) => JSON.parse(readFileSync(path.join(resultsDir, name), 'utf8')) as BenchResult);
}

/** The figures as rows: figure, kubevm, goal, met, KubeVirt (source). */
export function tableRows(result: BenchResult): string[][] {
  return result.figures.map((f) => {
    const met = goalMet(f);
    return [
      f.figure,
      formatValue(f.value, f.unit),
      f.goal ? `${f.goal.kind === 'max' ? '≤' : '≥'} ${formatValue(f.goal.value, f.unit)}` : '',
      met === undefined ? '' : met ? 'yes' : 'NO',
      f.kubevirt ? f.kubevirt.value : '',
    ];
  });
}

const HEADER = ['figure', 'kubevm', 'goal', 'met', 'KubeVirt'];

export function printTable(result: BenchResult): void {
  const rows = [HEADER, ...tableRows(result)];
  const widths = HEADER.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  process.stdout.write(`\n${result.bench} (${result.date}, ${result.commit.slice(0, 12)})\n${line(HEADER)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const row of rows.slice(1)) process.stdout.write(`${line(row)}\n`);
  const sources = [...new Set(result.figures.flatMap((f) => (f.kubevirt ? [f.kubevirt.source] : [])))];
  for (const source of sources) process.stdout.write(`KubeVirt source: ${source}\n`);
  for (const f of result.figures) if (f.note && goalMet(f) === false) process.stdout.write(`${f.figure} misses its goal: ${f.note}\n`);
}

/** One markdown table for a result, sources as footnotes. */
export function markdownTable(result: BenchResult): string {
  const escape = (cell: string) => cell.replace(/\|/g, '\\|');
  const rows = tableRows(result).map((row, i) => {
    const figure = result.figures[i];
    const cells = row.map(escape);
    if (figure?.kubevirt) cells[4] = `${escape(figure.kubevirt.value)} ([source](${figure.kubevirt.source}))`;
    if (cells[3] === 'NO') cells[3] = '**NO**';
    return `| ${cells.join(' | ')} |`;
  });
  const notes = result.figures.filter((f) => f.note).map((f) => `- \`${f.figure}\`: ${f.note}`);
  return [`| ${HEADER.join(' | ')} |`, `| ${HEADER.map(() => '---').join(' | ')} |`, ...rows, '', ...notes].join('\n');
}

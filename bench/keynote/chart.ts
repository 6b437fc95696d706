// SVG charts for the keynote results (grouped TPS bars per system and α; per-second TPS and p99 latency over time),
// and conversion to PNG with a local Debian tool when one is installed (rsvg-convert, else ImageMagick `convert`).
// Relaxed-durability systems are drawn apart from the durable ones: after a gap in each bar group, pale and dashed
// (bars) or dashed (lines), in their own legend section, in the hue of their durable counterpart.
// Owns nothing but the files it writes. May call: node built-ins, rsvg-convert / convert.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Requirement } from '../install.js';
import { hasCommand } from './procs.js';

const widthPx = 900;
const heightPx = 420;
const marginPx = { left: 80, right: 200, top: 40, bottom: 50 };
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const pngMagic = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
const relaxedFillOpacity = 0.35;
const relaxedDash = '6 3';
const legendRowPx = 18;

/** A system (or series) as charted: `hueKey` picks the colour, so a relaxed variant shares its durable one's hue. */
export interface ChartEntry {
  name: string;
  relaxed: boolean;
  hueKey: string;
}

/** Colour per hue key, in order of first appearance. */
function huesOf(entries: ChartEntry[]): Map<string, string> {
  const hues = new Map<string, string>();
  for (const e of entries) if (!hues.has(e.hueKey)) hues.set(e.hueKey, palette[hues.size % palette.length]);
  return hues;
}

/** Durable entries first, then relaxed, each in the given order. */
function durableFirst<T extends ChartEntry>(entries: T[]): T[] {
  return [...entries.filter((e) => !e.relaxed), ...entries.filter((e) => e.relaxed)];
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function frame(title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${widthPx}" height="${heightPx}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${widthPx / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    ...body, '</svg>',
  ].join('\n');
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v)!;
}

function yAxis(maxValue: number, label: string): string[] {
  const plotH = heightPx - marginPx.top - marginPx.bottom;
  const out = [`<text x="16" y="${marginPx.top + plotH / 2}" transform="rotate(-90 16 ${marginPx.top + plotH / 2})" text-anchor="middle">${esc(label)}</text>`];
  for (let i = 0; i <= 5; i++) {
    const y = marginPx.top + plotH - (plotH * i) / 5;
    out.push(`<line x1="${marginPx.left}" x2="${widthPx - marginPx.right}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${marginPx.left - 6}" y="${y + 4}" text-anchor="end">${fmt((maxValue * i) / 5)}</text>`);
  }
  return out;
}

function fmt(v: number): string {
  if (v >= 10_000) return `${Math.round(v / 1000)}k`;
  if (v >= 100) return `${Math.round(v)}`;
  return `${Math.round(v * 10) / 10}`;
}

/** Legend rows; when relaxed entries exist, two headed sections (durable, then relaxed). */
function legend(entries: ChartEntry[], hues: Map<string, string>): string[] {
  const x = widthPx - marginPx.right + 12;
  const sectioned = entries.some((e) => e.relaxed);
  const out: string[] = [];
  let row = 0;
  const heading = (text: string) => out.push(`<text x="${x}" y="${marginPx.top + 10 + row++ * legendRowPx}" font-weight="bold">${esc(text)}</text>`);
  const ordered = durableFirst(entries);
  ordered.forEach((e, i) => {
    if (sectioned && i === 0 && !e.relaxed) heading('durable (ack after fsync)');
    if (sectioned && e.relaxed && (i === 0 || !ordered[i - 1].relaxed)) heading('relaxed (ack before fsync)');
    const y = marginPx.top + 10 + row++ * legendRowPx;
    const color = hues.get(e.hueKey)!;
    out.push(`<rect x="${x}" y="${y - 9}" width="12" height="10" ${swatchStyle(color, e.relaxed)}/>`,
      `<text x="${x + 18}" y="${y}" font-size="11">${esc(e.name)}</text>`);
  });
  return out;
}

function swatchStyle(color: string, relaxed: boolean): string {
  return relaxed
    ? `fill="${color}" fill-opacity="${relaxedFillOpacity}" stroke="${color}" stroke-dasharray="${relaxedDash}"`
    : `fill="${color}"`;
}

/** Grouped bars: one group per α, one bar per system; relaxed systems after a gap of half a bar. */
export function tpsBarsSvg(title: string, systems: ChartEntry[], alphas: number[], tps: (system: string, alpha: number) => number | undefined): string {
  const plotW = widthPx - marginPx.left - marginPx.right;
  const plotH = heightPx - marginPx.top - marginPx.bottom;
  const ordered = durableFirst(systems);
  const hues = huesOf(ordered);
  const gapSlots = ordered.some((s) => s.relaxed) && ordered.some((s) => !s.relaxed) ? 0.5 : 0;
  const maxV = niceMax(Math.max(0, ...ordered.flatMap((s) => alphas.map((a) => tps(s.name, a) ?? 0))));
  const body = yAxis(maxV, 'transfers / s');
  const groupW = plotW / alphas.length;
  const barW = (groupW * 0.8) / Math.max(1, ordered.length + gapSlots);
  alphas.forEach((alpha, g) => {
    const gx = marginPx.left + g * groupW + groupW * 0.1;
    body.push(`<text x="${gx + groupW * 0.4}" y="${heightPx - marginPx.bottom + 20}" text-anchor="middle">α = ${alpha}</text>`);
    ordered.forEach((s, i) => {
      const v = tps(s.name, alpha);
      if (v === undefined) return;
      const h = (plotH * v) / maxV;
      const x = gx + (i + (s.relaxed ? gapSlots : 0)) * barW;
      body.push(`<rect x="${x}" y="${marginPx.top + plotH - h}" width="${barW - 2}" height="${h}" ${swatchStyle(hues.get(s.hueKey)!, s.relaxed)}/>`);
      body.push(`<text x="${x + barW / 2}" y="${marginPx.top + plotH - h - 4}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
    });
  });
  return frame(title, [...body, ...legend(ordered, hues)]);
}

/** One polyline per named series of (x, y) points; relaxed series dashed. */
export function linesSvg(title: string, yLabel: string, series: (ChartEntry & { points: [number, number][] })[]): string {
  const plotW = widthPx - marginPx.left - marginPx.right;
  const plotH = heightPx - marginPx.top - marginPx.bottom;
  const ordered = durableFirst(series);
  const hues = huesOf(ordered);
  const maxX = Math.max(1, ...ordered.flatMap((s) => s.points.map((p) => p[0])));
  const maxY = niceMax(Math.max(0, ...ordered.flatMap((s) => s.points.map((p) => p[1]))));
  const body = yAxis(maxY, yLabel);
  body.push(`<text x="${marginPx.left + plotW / 2}" y="${heightPx - 12}" text-anchor="middle">seconds into the measured window</text>`);
  for (const s of ordered) {
    const pts = s.points.map(([x, y]) => `${marginPx.left + (plotW * x) / maxX},${marginPx.top + plotH - (plotH * y) / maxY}`);
    const dash = s.relaxed ? ` stroke-dasharray="${relaxedDash}"` : '';
    body.push(`<polyline fill="none" stroke-width="2" stroke="${hues.get(s.hueKey)!}"${dash} points="${pts.join(' ')}"/>`);
  }
  return frame(title, [...body, ...legend(ordered, hues)]);
}

/** The PNG converter, for ../install.ts: Debian's librsvg2-bin. Without it (and without ImageMagick) charts stay SVG. */
export const pngRequirement: Requirement = {
  key: 'rsvg-convert',
  name: 'rsvg-convert (SVG→PNG charts)',
  packages: ['librsvg2-bin'],
  without: 'charts are written as SVG only',
  present: () => hasCommand('rsvg-convert') || hasCommand('convert'),
};

/** Writes `<base>.svg` and, when a converter works, `<base>.png`. Returns the files written. */
export function writeChart(base: string, svg: string): string[] {
  writeFileSync(`${base}.svg`, svg);
  const png = `${base}.png`;
  const attempts: [string, string[]][] = [['rsvg-convert', ['-o', png, `${base}.svg`]], ['convert', [`${base}.svg`, png]]];
  for (const [cmd, args] of attempts) {
    if (!hasCommand(cmd)) continue;
    try {
      execFileSync(cmd, args, { stdio: 'ignore', timeout: 30_000 });
      if (existsSync(png) && readFileSync(png).subarray(0, 4).equals(pngMagic)) return [`${base}.svg`, png];
    } catch {
      // this converter cannot render SVG here; try the next
    }
  }
  return [`${base}.svg`];
}

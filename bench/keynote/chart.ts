// SVG charts for the keynote results (grouped TPS bars per system and α; per-second TPS and p99 latency over time),
// and conversion to PNG with a local Debian tool when one is installed (rsvg-convert, else ImageMagick `convert`).
// Owns nothing but the files it writes. May call: node built-ins, rsvg-convert / convert.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hasCommand } from './procs.js';

const widthPx = 900;
const heightPx = 420;
const marginPx = { left: 80, right: 200, top: 40, bottom: 50 };
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const pngMagic = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

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

function legend(names: string[]): string[] {
  return names.flatMap((name, i) => {
    const y = marginPx.top + 10 + i * 18;
    const x = widthPx - marginPx.right + 12;
    return [`<rect x="${x}" y="${y - 9}" width="12" height="10" fill="${palette[i % palette.length]}"/>`,
      `<text x="${x + 18}" y="${y}">${esc(name)}</text>`];
  });
}

/** Grouped bars: one group per α, one bar per system. */
export function tpsBarsSvg(title: string, systems: string[], alphas: number[], tps: (system: string, alpha: number) => number | undefined): string {
  const plotW = widthPx - marginPx.left - marginPx.right;
  const plotH = heightPx - marginPx.top - marginPx.bottom;
  const maxV = niceMax(Math.max(0, ...systems.flatMap((s) => alphas.map((a) => tps(s, a) ?? 0))));
  const body = yAxis(maxV, 'transfers / s');
  const groupW = plotW / alphas.length;
  const barW = (groupW * 0.8) / Math.max(1, systems.length);
  alphas.forEach((alpha, g) => {
    const gx = marginPx.left + g * groupW + groupW * 0.1;
    body.push(`<text x="${gx + groupW * 0.4}" y="${heightPx - marginPx.bottom + 20}" text-anchor="middle">α = ${alpha}</text>`);
    systems.forEach((s, i) => {
      const v = tps(s, alpha);
      if (v === undefined) return;
      const h = (plotH * v) / maxV;
      const x = gx + i * barW;
      body.push(`<rect x="${x}" y="${marginPx.top + plotH - h}" width="${barW - 2}" height="${h}" fill="${palette[i % palette.length]}"/>`);
      body.push(`<text x="${x + barW / 2}" y="${marginPx.top + plotH - h - 4}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
    });
  });
  return frame(title, [...body, ...legend(systems)]);
}

/** One polyline per named series of (x, y) points. */
export function linesSvg(title: string, yLabel: string, series: { name: string; points: [number, number][] }[]): string {
  const plotW = widthPx - marginPx.left - marginPx.right;
  const plotH = heightPx - marginPx.top - marginPx.bottom;
  const maxX = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const maxY = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1]))));
  const body = yAxis(maxY, yLabel);
  body.push(`<text x="${marginPx.left + plotW / 2}" y="${heightPx - 12}" text-anchor="middle">seconds into the measured window</text>`);
  series.forEach((s, i) => {
    const pts = s.points.map(([x, y]) => `${marginPx.left + (plotW * x) / maxX},${marginPx.top + plotH - (plotH * y) / maxY}`);
    body.push(`<polyline fill="none" stroke-width="2" stroke="${palette[i % palette.length]}" points="${pts.join(' ')}"/>`);
  });
  return frame(title, [...body, ...legend(series.map((s) => s.name))]);
}

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

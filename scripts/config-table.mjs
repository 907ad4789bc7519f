// The README's configuration table, rendered from the settings table (src/config/settings.ts),
// so that the two cannot drift: test/settings.test.mjs fails when README.md differs from it, and
//   npm run readme
// rewrites the README between the markers. Not part of `npm run build`: a build must not change
// tracked files (CI checks out a clean tree; a benchmark run builds older commits).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const README = path.join(ROOT, 'README.md');
export const BEGIN = '<!-- settings table: from src/config/settings.ts; `npm run readme` rewrites it -->';
export const END = '<!-- end of settings table -->';

const code = (s) => `\`${s}\``;

function defaultCell(s) {
  if (s.defaultDoc !== undefined) return s.defaultDoc;
  const d = s.default;
  if (d === undefined) return 'unset';
  if (Array.isArray(d)) return d.length === 0 ? 'none' : d.map(code).join(', ');
  if (typeof d === 'object') return Object.keys(d).length === 0 ? 'none' : code(JSON.stringify(d));
  return typeof d === 'number' ? String(d) : code(String(d));
}

/** The markdown table, one row per setting, in the table's order. */
export function renderConfigTable() {
  const { SETTING_ROWS } = createRequire(import.meta.url)(path.join(ROOT, 'dist', 'config', 'settings.js'));
  const rows = SETTING_ROWS.map((s) =>
    [s.option === undefined ? '' : code(s.option), s.env.map(code).join(', '), defaultCell(s), s.doc]
      .map((cell) => cell.replace(/\|/g, '\\|'))
      .join(' | '),
  );
  return [
    '| option | environment variables (the first one set is read) | default | |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r} |`),
  ].join('\n');
}

/** The README's text between the markers, or undefined when a marker is missing. */
export function readmeTable(text = fs.readFileSync(README, 'utf8')) {
  const from = text.indexOf(BEGIN);
  const to = text.indexOf(END);
  if (from < 0 || to < from) return undefined;
  return text.slice(from + BEGIN.length, to).trim();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const table = renderConfigTable();
  if (!process.argv.includes('--write')) process.stdout.write(table + '\n');
  else {
    const text = fs.readFileSync(README, 'utf8');
    if (readmeTable(text) === undefined) throw new Error(`README.md needs the markers ${BEGIN} and ${END}`);
    const next = `${text.slice(0, text.indexOf(BEGIN) + BEGIN.length)}\n${table}\n${text.slice(text.indexOf(END))}`;
    fs.writeFileSync(README, next);
    console.log(next === text ? 'README.md: the table was up to date' : 'README.md: table rewritten');
  }
}

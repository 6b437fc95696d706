// bench/usage.ts — `--help` / `-h` for the bench scripts: prints the script's own header comment (where each script
// documents what it measures and its flags) and exits, so asking for help never starts a measurement.
// May call: node:fs, node:url.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Call first thing with `import.meta.url`: on `--help`/`-h`, prints the file's leading comment and exits 0. */
export function exitWithUsageOnHelp(moduleUrl: string): void {
  if (!process.argv.includes('--help') && !process.argv.includes('-h')) return;
  const lines = readFileSync(fileURLToPath(moduleUrl), 'utf8').split('\n');
  const end = lines.findIndex((l) => !l.startsWith('//'));
  console.log(lines.slice(0, end === -1 ? lines.length : end).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}

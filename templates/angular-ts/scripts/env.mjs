// Angular's builder reads no .env files, so `npm run dev` and `npm run build` first write the database and server
// into src/environments/environment.local.ts, which angular.json swaps in for environment.ts. The environment that
// `spacetime dev` gives its client wins over .env.local (which `spacetime init` and `spacetime dev` write).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

function readEnvFile(file) {
  const vars = {};
  if (!existsSync(file)) return vars;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) vars[m[1]] = m[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  return vars;
}

const file = readEnvFile('.env.local');
const pick = (key, fallback) => process.env[key] || file[key] || fallback;
const environment = {
  SPACETIMEDB_HOST: pick('SPACETIMEDB_HOST', 'ws://127.0.0.1:3000'),
  SPACETIMEDB_DB_NAME: pick('SPACETIMEDB_DB_NAME', 'angular-ts'),
};
writeFileSync('src/environments/environment.local.ts',
  `// Written by scripts/env.mjs from .env.local on every \`npm run dev\` / \`npm run build\`; edit .env.local instead.\n` +
  `export const environment = ${JSON.stringify(environment, null, 2)};\n`);
console.log(`SpacetimeDB: ${environment.SPACETIMEDB_DB_NAME} at ${environment.SPACETIMEDB_HOST}`);

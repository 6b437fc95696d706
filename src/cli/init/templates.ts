// The built-in project templates (upstream's TypeScript template ids) and the client environment file they read.
// Owns: the template registry and its one-line descriptions, the `--template` listing, and `.env.local` (the
// database name and server address under every framework's prefix; written by `spacetime init`, kept in step by
// `spacetime dev`). May call: node:fs, node:path, node:url.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (…/dist/cli/init → …, or …/src/cli/init → …). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** Template files ship with the package and are read at run time. */
export const templatesDir = path.join(packageRoot, 'templates');

export type ClientKind = 'node' | 'web' | 'native';
/** The module's language; this server builds and runs `typescript` only (the others are scaffolds for upstream). */
export type TemplateLanguage = 'typescript' | 'rust' | 'csharp';
/** How each language is named in output. */
export const languageNames: Record<TemplateLanguage, string> = { typescript: 'TypeScript', rust: 'Rust', csharp: 'C#' };

export interface TemplateDef {
  id: string;
  description: string;
  language: TemplateLanguage;
  /**
   * How the client runs: a Node program (`npm run dev`), a page served by a dev server / built for the browser, or a
   * native program of the template's language (`cargo run`, `dotnet run`).
   */
  client: ClientKind;
}

/** Every template is `templates/<id>/`: a client at the top and the module in `spacetimedb/`. */
export const builtinTemplates: readonly TemplateDef[] = [
  { id: 'basic-ts', description: 'Minimal TypeScript module with a Node client that adds a person and prints the table', language: 'typescript', client: 'node' },
  { id: 'nodejs-ts', description: 'Interactive Node.js client (runs on Node 20 via undici) with a TypeScript module', language: 'typescript', client: 'node' },
  { id: 'browser-ts', description: 'Plain TypeScript web page (Vite, no framework) with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'react-ts', description: 'React web app (Vite) listing a table live, with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'chat-react-ts', description: 'Quickstart chat: React web app (Vite) with users, names and messages', language: 'typescript', client: 'web' },
  { id: 'vue-ts', description: 'Vue.js web app (Vite) with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'svelte-ts', description: 'Svelte 5 web app (Vite) with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'solid-ts', description: 'SolidJS web app (Vite) with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'nextjs-ts', description: 'Next.js App Router web app with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'angular-ts', description: 'Angular web app (signals, no zone.js) with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'nuxt-ts', description: 'Nuxt 3 web app (Vue, server-rendered shell) with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'astro-ts', description: 'Astro static site with a live React island and a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'remix-ts', description: 'Remix as React Router 7 (framework mode, server-rendered) with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'tanstack-ts', description: 'TanStack Start (React, Router and Query) with a TypeScript module', language: 'typescript', client: 'web' },
  { id: 'money-exchange-react-ts', description: 'Money exchange: private accounts, names and live transfers (React, views)', language: 'typescript', client: 'web' },
  { id: 'hangman-react-ts', description: 'Competitive hangman: timed rounds, private boards, live standings (React, scheduled reducers)', language: 'typescript', client: 'web' },
  { id: 'basic-rs', description: 'Rust module and native client skeleton, for upstream SpacetimeDB (this server runs TypeScript only)', language: 'rust', client: 'native' },
  { id: 'basic-cs', description: 'C# module and console client skeleton, for upstream SpacetimeDB (this server runs TypeScript only)', language: 'csharp', client: 'native' },
];

export function findTemplate(id: string): TemplateDef | undefined {
  return builtinTemplates.find((t) => t.id === id);
}

/** `  <id> - <description>` lines, as upstream prints them. */
export function templateListLines(): string[] {
  return builtinTemplates.map((t) => `  ${t.id} - ${t.description}`);
}

/** Upstream's `spacetime init --template` (no value): the list, then how to use it. */
export function printTemplateList(print: (line: string) => void): void {
  print('Available templates:');
  for (const line of templateListLines()) print(line);
  print('');
  print('Create a project: spacetime init --template <id>');
  print('Or create and run one: spacetime dev --template <id>');
}

/**
 * The variable prefixes each client framework exposes to the browser (generic/Node, Vite, Next.js, Create React App,
 * Expo, SvelteKit): one file serves every template, and a user who swaps frameworks keeps working settings.
 */
const envPrefixes: readonly string[] = ['SPACETIMEDB', 'VITE_SPACETIMEDB', 'NEXT_PUBLIC_SPACETIMEDB', 'REACT_APP_SPACETIMEDB',
  'EXPO_PUBLIC_SPACETIMEDB', 'PUBLIC_SPACETIMEDB'];
export const clientEnvFileName = '.env.local';

/** The WebSocket address a client connects to for a server's HTTP URL. */
export function clientHostFor(serverUrl: string): string {
  return serverUrl.replace(/^http:/, 'ws:').replace(/^https:/, 'wss:');
}

/** `<PREFIX>_DB_NAME` / `<PREFIX>_HOST` for every prefix (also the environment `spacetime dev` gives its client). */
export function clientEnvVars(database: string, serverUrl: string): Record<string, string> {
  const vars: Record<string, string> = {};
  const host = clientHostFor(serverUrl);
  for (const prefix of envPrefixes) {
    vars[`${prefix}_DB_NAME`] = database;
    vars[`${prefix}_HOST`] = host;
  }
  return vars;
}

/**
 * Sets every client variable in `<dir>/.env.local`, keeping the user's other lines and comments; a variable already
 * present is replaced in place. Returns whether the file changed.
 */
export function upsertClientEnvFile(dir: string, database: string, serverUrl: string): boolean {
  const file = path.join(dir, clientEnvFileName);
  const original = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const lines = original === '' ? [] : original.replace(/\n$/, '').split('\n');
  for (const [key, value] of Object.entries(clientEnvVars(database, serverUrl))) {
    const at = lines.findIndex((line) => new RegExp(`^\\s*${key}\\s*=`).test(line));
    if (at >= 0) lines[at] = `${key}=${value}`;
    else lines.push(`${key}=${value}`);
  }
  const text = lines.join('\n') + '\n';
  if (text === original) return false;
  writeFileSync(file, text);
  return true;
}

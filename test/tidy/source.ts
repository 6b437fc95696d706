// tidy/source.ts — reads src/**/*.ts as text and parses it (TypeScript's parser, no type checking, nothing is run)
// into the facts the house rules look at: each file's header comment, relative imports, functions with their
// lengths, exported names and `as unknown as` casts.
// Owns: the model of a source file that test/tidy/tidy.test.ts checks. May call: typescript, node:fs, node:path.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const srcRoot = path.join(repoRoot, 'src');

export interface ImportEdge {
  /** src-relative path of the imported file, e.g. `sats/types.ts`. */
  target: string;
  /** Names imported (`default`, `*` for a namespace import); re-exports count as imports. */
  names: string[];
  /** `import type` / `export type … from`: erased at run time, so it cannot make an evaluation-order cycle. */
  typeOnly: boolean;
  line: number;
}

export interface FunctionInfo {
  /** `name`, `Class.method`, or `outer/inner` for a named function inside another. */
  name: string;
  lines: number;
  line: number;
}

export interface ExportInfo {
  name: string;
  kind: 'function' | 'const' | 'class' | 'type' | 'enum';
  line: number;
}

export interface SourceFile {
  /** src-relative path with forward slashes, e.g. `durability/commitlog.ts`. */
  rel: string;
  text: string;
  /** The comment lines before the first statement, without the `//` markers. */
  header: string;
  imports: ImportEdge[];
  /** Names re-exported from another file (`export { x } from './y.js'` or `export { x }` of an imported name). */
  reexports: Set<string>;
  functions: FunctionInfo[];
  exports: ExportInfo[];
  asUnknownAsLines: number[];
  /** How often each identifier occurs in the file's code (comments and strings excluded). */
  identifierCounts: Map<string, number>;
}

export function listSourceFiles(dir = srcRoot): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...listSourceFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) found.push(full);
  }
  return found.sort();
}

export function loadSources(): SourceFile[] {
  return listSourceFiles().map((full) => parseSource(path.relative(srcRoot, full).split(path.sep).join('/'),
    readFileSync(full, 'utf8')));
}

export function parseSource(rel: string, text: string): SourceFile {
  const sf = ts.createSourceFile(rel, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const file: SourceFile = {
    rel, text, header: headerOf(text), imports: [], reexports: new Set(), functions: [], exports: [],
    asUnknownAsLines: [], identifierCounts: new Map(),
  };
  const importedNames = new Set<string>();
  const visit = (node: ts.Node, owner: string | undefined): void => {
    if (ts.isImportDeclaration(node) || (ts.isExportDeclaration(node) && node.moduleSpecifier)) {
      const edge = importEdge(rel, node, lineOf(node.getStart(sf)));
      if (edge) file.imports.push(edge);
      if (ts.isImportDeclaration(node)) for (const n of edge?.names ?? []) importedNames.add(n);
      if (ts.isExportDeclaration(node)) for (const n of exportClauseNames(node)) file.reexports.add(n.exported);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteral(arg) && arg.text.startsWith('.')) {
        const target = resolveImport(rel, arg.text);
        file.imports.push({ target, names: dynamicImportNames(node), typeOnly: false, line: lineOf(node.getStart(sf)) });
      }
    } else if (ts.isExportDeclaration(node) && !node.moduleSpecifier) {
      for (const n of exportClauseNames(node)) {
        if (importedNames.has(n.local)) file.reexports.add(n.exported);
        else file.exports.push({ name: n.exported, kind: 'const', line: lineOf(node.getStart(sf)) });
      }
    } else if (ts.isAsExpression(node) && ts.isAsExpression(node.expression)
      && node.expression.type.kind === ts.SyntaxKind.UnknownKeyword) {
      file.asUnknownAsLines.push(lineOf(node.getStart(sf)));
    } else if (ts.isIdentifier(node)) {
      file.identifierCounts.set(node.text, (file.identifierCounts.get(node.text) ?? 0) + 1);
    }
    if (node.parent === sf) collectExports(node, file, lineOf);
    const fn = functionInfo(node, owner, sf);
    if (fn) file.functions.push({ ...fn, line: lineOf(node.getStart(sf)) });
    const nextOwner = fn?.name ?? (ts.isClassDeclaration(node) && node.name ? node.name.text : owner);
    ts.forEachChild(node, (child) => visit(child, nextOwner));
  };
  ts.forEachChild(sf, (child) => visit(child, undefined));
  return file;
}

function headerOf(text: string): string {
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#!')) continue;
    if (!line.startsWith('//')) break;
    lines.push(line.replace(/^\/\/ ?/, ''));
  }
  return lines.join('\n');
}

function resolveImport(fromRel: string, specifier: string): string {
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(fromRel), specifier));
  return joined.replace(/\.js$/, '.ts');
}

function importEdge(rel: string, node: ts.ImportDeclaration | ts.ExportDeclaration, line: number): ImportEdge | undefined {
  const spec = node.moduleSpecifier;
  if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) return undefined;
  const names: string[] = [];
  let typeOnly = node.isTypeOnly;
  if (ts.isImportDeclaration(node)) {
    typeOnly = node.importClause?.isTypeOnly ?? false;
    const clause = node.importClause;
    if (clause?.name) names.push('default');
    const bindings = clause?.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) names.push('*');
    if (bindings && ts.isNamedImports(bindings)) {
      for (const el of bindings.elements) names.push((el.propertyName ?? el.name).text);
      if (!clause?.name && bindings.elements.length > 0 && bindings.elements.every((el) => el.isTypeOnly)) typeOnly = true;
    }
  } else if (!node.exportClause) names.push('*');
  else names.push(...exportClauseNames(node).map((n) => n.local));
  return { target: resolveImport(rel, spec.text), names, typeOnly, line };
}

function exportClauseNames(node: ts.ExportDeclaration): { local: string; exported: string }[] {
  const clause = node.exportClause;
  if (!clause || !ts.isNamedExports(clause)) return [];
  return clause.elements.map((el) => ({ local: (el.propertyName ?? el.name).text, exported: el.name.text }));
}

/** `const { a, b } = await import('./x.js')` names a and b; anything else counts as the whole module. */
function dynamicImportNames(call: ts.CallExpression): string[] {
  let node: ts.Node = call.parent;
  if (ts.isAwaitExpression(node)) node = node.parent;
  if (ts.isVariableDeclaration(node) && ts.isObjectBindingPattern(node.name)) {
    return node.name.elements.map((el) => (el.propertyName && ts.isIdentifier(el.propertyName)
      ? el.propertyName.text : (el.name as ts.Identifier).text));
  }
  return ['*'];
}

function hasExportModifier(node: ts.Node): boolean {
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
}

function collectExports(node: ts.Node, file: SourceFile, lineOf: (pos: number) => number): void {
  if (!hasExportModifier(node)) return;
  const line = lineOf(node.getStart());
  if (ts.isFunctionDeclaration(node) && node.name) file.exports.push({ name: node.name.text, kind: 'function', line });
  else if (ts.isClassDeclaration(node) && node.name) file.exports.push({ name: node.name.text, kind: 'class', line });
  else if (ts.isEnumDeclaration(node)) file.exports.push({ name: node.name.text, kind: 'enum', line });
  else if (ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node)) {
    file.exports.push({ name: node.name.text, kind: 'type', line });
  } else if (ts.isVariableStatement(node)) {
    for (const decl of node.declarationList.declarations) {
      if (ts.isIdentifier(decl.name)) file.exports.push({ name: decl.name.text, kind: 'const', line });
    }
  }
}

/** Functions with a body: declarations, methods, accessors, and function/arrow expressions bound to a name. */
function functionInfo(node: ts.Node, owner: string | undefined, sf: ts.SourceFile): Omit<FunctionInfo, 'line'> | undefined {
  let name: string | undefined;
  if (ts.isFunctionDeclaration(node) && node.body) name = node.name?.text ?? 'default';
  else if ((ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) && node.body) {
    name = node.name.getText(sf);
  } else if (ts.isConstructorDeclaration(node) && node.body) name = 'constructor';
  else if ((ts.isArrowFunction(node) || ts.isFunctionExpression(node))) {
    const parent = node.parent;
    if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) name = parent.name.text;
    else if (ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) name = parent.name.getText(sf);
  }
  if (name === undefined) return undefined;
  const separator = ts.isClassElement(node) ? '.' : '/';
  const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
  const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
  return { name: owner ? `${owner}${separator}${name}` : name, lines: end - start + 1 };
}

// cli/generate/extract.ts — gets a module's definition (`__describe_module__` bytes) out of a bundled JS module.
//
// Owns: the throwaway isolate used only for describing. Upstream runs `spacetimedb-standalone extract-schema <file>`;
// we have no sibling binary, so this is the one place where cli/ reaches into host/ (program preparation and the
// isolate runtime). No datastore is opened: describing runs the module's top level and its describe hook only,
// which never issue table syscalls.
// May call: host/program (prepareProgram), host/runtime (ModuleRuntime), host/syscalls (SyscallHost), node:fs.

import { readFile } from 'node:fs/promises';
import { prepareProgram } from '../../host/program.js';
import { ModuleRuntime } from '../../host/runtime.js';
import { SyscallHost } from '../../host/syscalls.js';

/** Heap for the describe-only isolate. */
const describeMemoryLimitMib = 256;
/** Describing never runs a reducer; this only bounds a module whose top level misbehaves. */
const describeTimeoutMs = 10_000;

/** Evaluates `program` (a bundled module, the text `spacetime publish` uploads) and returns its RawModuleDef bytes. */
export async function describeProgram(program: string | Uint8Array): Promise<Uint8Array> {
  const prepared = await prepareProgram(program);
  const host = new SyscallHost({
    identity: 0n,
    log: (_level, message) => { process.stderr.write(`${message}\n`); },
    jwtPayload: () => undefined,
    scheduleImmediate: () => {},
  });
  const runtime = ModuleRuntime.create(prepared, host, {
    memoryLimitMib: describeMemoryLimitMib, reducerTimeoutMs: describeTimeoutMs,
  });
  try {
    return runtime.describe().slice();
  } finally {
    runtime.dispose();
  }
}

/** Reads a bundled module from disk (`--js-path` / `--bin-path`) and describes it. */
export async function describeJsFile(jsPath: string): Promise<Uint8Array> {
  return describeProgram(await readFile(jsPath));
}

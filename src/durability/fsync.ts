// durability/fsync.ts — directory sync, needed after creating, renaming or deleting files for the change to survive
// a power loss (a file's own fsync does not persist its directory entry).
//
// Owns: nothing on disk. May call: node:fs.

import fs from 'node:fs';

export function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function fsyncDirAsync(dir: string): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.open(dir, 'r', (openError, fd) => {
      if (openError) return reject(openError);
      fs.fsync(fd, (syncError) => fs.close(fd, (closeError) => (syncError ?? closeError ? reject(syncError ?? closeError) : resolve())));
    }),
  );
}

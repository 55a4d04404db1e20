import fs from 'node:fs';
import path from 'node:path';

/**
 * The data directory holds health records: only the server's own user may read or write
 * it. PGlite (like PostgreSQL's own initdb) creates its files itself, with modes from the
 * process umask, so the umask is narrowed before the database is opened; files that an
 * earlier version left readable by others are narrowed at start.
 */
export function keepNewFilesPrivate(): void {
  process.umask(0o077);
}

/** Creates `dir` (0700) if absent, and narrows it and everything under it: directories 0700, files 0600. */
export function makePrivate(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  narrow(dir);
}

function narrow(target: string): void {
  const stat = fs.lstatSync(target);
  // a symbolic link is left as it is: its target may be anything, anywhere
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) {
    if ((stat.mode & 0o777) !== 0o700) fs.chmodSync(target, 0o700);
    for (const entry of fs.readdirSync(target)) narrow(path.join(target, entry));
  } else if ((stat.mode & 0o077) !== 0) {
    fs.chmodSync(target, stat.mode & 0o700);
  }
}

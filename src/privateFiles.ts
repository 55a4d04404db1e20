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

/**
 * Creates `dir` (0700) if absent, and narrows it and everything under it: directories 0700,
 * files 0600. `skip`: a directory under it whose files the server writes private itself (the
 * content files, src/store/contentFiles.ts): there may be millions, and start-up walks none.
 */
export function makePrivate(dir: string, skip?: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  narrow(dir, skip === undefined ? undefined : path.resolve(skip));
}

function narrow(target: string, skip: string | undefined): void {
  const stat = fs.lstatSync(target);
  // a symbolic link is left as it is: its target may be anything, anywhere
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) {
    if ((stat.mode & 0o777) !== 0o700) fs.chmodSync(target, 0o700);
    if (target === skip) return;
    for (const entry of fs.readdirSync(target)) narrow(path.join(target, entry), skip);
  } else if ((stat.mode & 0o077) !== 0) {
    fs.chmodSync(target, stat.mode & 0o700);
  }
}

import type { Knex } from 'knex';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Large Binary content in files beside the database (docs/decisions/036-binary-content-files.md):
 * each file belongs to one row of binary_content, is written before the row, removed if
 * the row's transaction rolls back, and removed after the commit that deletes the row.
 */
export interface ContentFiles {
  /** The content directory (private to the server's user). */
  dir: string;
  /** Content of this many bytes or more goes to a file. */
  minBytes: number;
  /** Sync each file and its directory before its row is written (PostgreSQL; decision 032 for the embedded database). */
  sync: boolean;
}

type Db = Knex | Knex.Transaction;

/** The content files of a database handle, set where it was opened (src/store/database.ts); undefined: content stays in the database. */
export function contentFilesOf(db: Db): ContentFiles | undefined {
  // a transaction's client shares the config object of the client it was made from
  return (db.client.config as { contentFiles?: ContentFiles }).contentFiles;
}

/** A file's name relative to the directory: random, under two levels named by its first hex digits (no directory grows huge). */
function newName(): string {
  const id = crypto.randomUUID().replace(/-/g, '');
  return path.join(id.slice(0, 2), id.slice(2, 4), id);
}

/** The absolute path of a file named in a row; a name that would leave the directory is refused (rows are written by this module only). */
export function contentPath(files: ContentFiles, name: string): string {
  if (!/^[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{32}$/.test(name.split(path.sep).join('/'))) throw new Error(`"${name}" is not a content file name`);
  return path.join(files.dir, name);
}

async function syncPath(p: string): Promise<void> {
  const handle = await fs.promises.open(p, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A fresh name with its directories made; the leaf directory is returned to be synced. */
async function prepare(files: ContentFiles): Promise<{ name: string; full: string }> {
  const name = newName();
  const full = contentPath(files, name);
  await fs.promises.mkdir(path.dirname(full), { recursive: true, mode: 0o700 });
  return { name, full };
}

async function settle(files: ContentFiles, db: Db, name: string, full: string): Promise<string> {
  if (files.sync) {
    await syncPath(full);
    await syncPath(path.dirname(full));
  }
  removeOnRollback(db, files, [name]);
  return name;
}

/**
 * Places a spooled upload in the content directory under a new name: a hard link (the
 * spool's own name is removed once the request is answered), or a copy across file systems.
 */
export async function placeFile(db: Db, files: ContentFiles, from: string): Promise<string> {
  const { name, full } = await prepare(files);
  try {
    await fs.promises.link(from, full);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await fs.promises.copyFile(from, full, fs.constants.COPYFILE_EXCL);
  }
  await fs.promises.chmod(full, 0o600);
  return settle(files, db, name, full);
}

/** Writes content held in memory to a new file. */
export async function writeFile(db: Db, files: ContentFiles, data: Buffer): Promise<string> {
  const { name, full } = await prepare(files);
  await fs.promises.writeFile(full, data, { mode: 0o600, flag: 'wx' });
  return settle(files, db, name, full);
}

/** A new name for the bytes of a stored file (a version that keeps its content): a hard link, never a shared name. */
export async function linkFile(db: Db, files: ContentFiles, existing: string): Promise<string> {
  const { name, full } = await prepare(files);
  await fs.promises.link(contentPath(files, existing), full);
  return settle(files, db, name, full);
}

/** Removes files whose rows are gone or were never written; a failure is reported, never thrown. */
function discardFiles(files: ContentFiles, names: string[]): Promise<void> {
  return Promise.all(
    names.map((n) =>
      fs.promises.rm(contentPath(files, n), { force: true }).catch((e: unknown) => {
        // the rows are gone already: the bytes are unreachable through the server; an operator's sweep reclaims the file
        process.emitWarning(`content file ${n} could not be removed: ${(e as Error).message}`);
      }),
    ),
  ).then(() => undefined);
}

/**
 * Watches the end of `db`'s transaction: `onCommit` or `onRollback` runs once it is known.
 * Outside a transaction a statement commits as it runs: the caller has seen it succeed.
 */
function whenSettled(db: Db, onCommit: () => void, onRollback: () => void): void {
  const trx = db as Knex.Transaction;
  if (!trx.isTransaction) return onCommit();
  trx.executionPromise.then(onCommit, onRollback);
}

/** Files written for rows of this transaction go if it rolls back (a retried write draws new names). */
export function removeOnRollback(db: Db, files: ContentFiles, names: string[]): void {
  whenSettled(
    db,
    () => undefined,
    () => void discardFiles(files, names),
  );
}

/** Files whose rows this transaction deleted go once it has committed; a rollback keeps them. */
export function removeAfterCommit(db: Db, names: string[]): void {
  const files = contentFilesOf(db);
  if (!files || names.length === 0) return;
  whenSettled(
    db,
    () => void discardFiles(files, names),
    () => undefined,
  );
}

/**
 * Checks that a row's file is there and of the size the row records, before anything of
 * the answer is sent: a missing or truncated file is a server error, never a short document.
 */
export async function checkFile(files: ContentFiles, name: string, size: number): Promise<void> {
  const stat = await fs.promises.stat(contentPath(files, name)).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`content file ${name} cannot be read: ${e.code ?? e.message}`);
  });
  if (stat.size !== size) throw new Error(`content file ${name} holds ${stat.size} bytes, ${size} recorded`);
}

/** The bytes `start` to `end` (inclusive) of a content file (checked by checkFile), as they are read. */
export async function* fileBytes(files: ContentFiles, name: string, start: number, end: number, highWaterMark: number): AsyncGenerator<Buffer> {
  if (end < start) return;
  let sent = 0;
  for await (const piece of fs.createReadStream(contentPath(files, name), { start, end, highWaterMark })) {
    sent += (piece as Buffer).length;
    yield piece as Buffer;
  }
  if (sent !== end - start + 1) throw new Error(`content file ${name}: ${sent} bytes read, ${end - start + 1} expected`);
}

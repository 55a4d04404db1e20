/**
 * The content files no row names (docs/decisions/036-binary-content-files.md): a process
 * killed between writing a file and committing its row leaves one behind. Lists them, and
 * with --delete removes them; a file younger than --older-than (minutes, default 60) is left
 * alone, since its row may still be on its way to a commit.
 *
 *   npm run content-sweep -- [--older-than 60] [--delete]
 *
 * The directory and the database are the server's (CONTENT_DIR or $DATA_DIR/content;
 * DATABASE_URL or the embedded database in DATA_DIR). One content directory per database:
 * a directory shared by two databases would have each one's files swept as unnamed by the other.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { argumentsOrExit, configOrExit } from './commandLine';
import { namedContentFiles } from '../src/store/binaryContent';
import { openDatabase } from '../src/store/database';

export interface SweepOptions {
  dir: string;
  olderThanMinutes: number;
  remove: boolean;
  now?: Date;
  print?: (line: string) => void;
}

export function parseArgs(argv: string[]): { olderThanMinutes: number; remove: boolean } {
  let olderThanMinutes = 60;
  let remove = false;
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--older-than' && value !== undefined && /^\d+$/.test(value)) (olderThanMinutes = Number(value)), i++;
    else if (argv[i] === '--delete') remove = true;
    else throw new Error(`unknown or incomplete argument "${argv[i]}": usage content-sweep [--older-than 60] [--delete]`);
  }
  return { olderThanMinutes, remove };
}

/** The files under the content directory's two levels, relative to it, with their modification time. */
function* contentFiles(dir: string): Generator<{ name: string; mtimeMs: number }> {
  const hex2 = /^[0-9a-f]{2}$/;
  for (const a of fs.readdirSync(dir).filter((n) => hex2.test(n))) {
    for (const b of fs.readdirSync(path.join(dir, a)).filter((n) => hex2.test(n))) {
      for (const f of fs.readdirSync(path.join(dir, a, b))) {
        const stat = fs.statSync(path.join(dir, a, b, f));
        if (stat.isFile()) yield { name: path.join(a, b, f), mtimeMs: stat.mtimeMs };
      }
    }
  }
}

/** The unnamed files found (removed with `remove`). */
export async function contentSweep(knex: Knex, o: SweepOptions): Promise<string[]> {
  const print = o.print ?? ((line: string) => console.log(line));
  const before = (o.now ?? new Date()).getTime() - o.olderThanMinutes * 60_000;
  const unnamed: string[] = [];
  let seen = 0;
  const check = async (batch: string[]) => {
    const named = await namedContentFiles(knex, batch);
    for (const name of batch) if (!named.has(name)) unnamed.push(name);
  };
  let batch: string[] = [];
  for (const f of contentFiles(o.dir)) {
    seen++;
    if (f.mtimeMs >= before) continue;
    batch.push(f.name);
    if (batch.length === 1000) (await check(batch), (batch = []));
  }
  if (batch.length) await check(batch);
  for (const name of unnamed) {
    if (o.remove) fs.rmSync(path.join(o.dir, name), { force: true });
    print(`content-sweep: ${o.remove ? 'removed' : 'unnamed'} ${name}`);
  }
  print(`content-sweep: ${seen} file(s) in ${o.dir}, ${unnamed.length} named by no row${o.remove ? ', removed' : ' (--delete removes them)'}`);
  return unnamed;
}

async function main(): Promise<void> {
  const config = configOrExit();
  const args = argumentsOrExit(parseArgs);
  if (!config.contentDir) {
    console.error('No content directory: the database keeps every content (set CONTENT_DIR, or DATA_DIR for the embedded database)');
    process.exit(2);
  }
  const db = await openDatabase(config);
  try {
    await contentSweep(db.knex, { dir: config.contentDir, ...args });
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}

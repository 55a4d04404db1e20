import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * One process at a time on an embedded database directory.
 *
 * PGlite is PostgreSQL in single-user mode inside this process: it has no shared memory
 * nor postmaster.pid that another process would see. Two processes opening the same files
 * each keep their own buffers and write over each other; acknowledged writes of one are
 * lost at the next start. The lock file makes the second one refuse to open the directory.
 *
 * The lock is a file created exclusively (`O_EXCL`), holding the owner's pid, host and
 * process start time. It is removed when the database closes and, failing that, when the
 * process exits. A lock left by a process that died without removing it (kill -9, a crash,
 * a power cut) is stale: its pid is not alive on this host, or is alive but started at
 * another time (the pid was reused, e.g. pid 1 in successive containers). A stale lock is
 * taken over. A lock written on another host (a shared volume) cannot be checked and is
 * never taken over: remove it by hand once that host's server is stopped.
 *
 * Left open: two servers started at the same instant on a directory whose lock is stale may
 * both judge it stale; the one that removes it after the other has re-created it takes a
 * lock that is no longer the stale one. Starting two servers at once on one directory after
 * a crash is the only way there.
 */
export class DataDirLocked extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirLocked';
  }
}

interface Owner {
  pid: number;
  host: string;
  /** Start time of the process (clock ticks since boot, /proc/<pid>/stat), when the system tells. */
  started?: string;
}

export const LOCK_FILE = 'server.lock';

/** Lock files this process holds (a second opening in the same process is refused as well). */
const heldHere = new Set<string>();

export interface DataDirLock {
  readonly file: string;
  release(): void;
}

/** Takes the lock of `dataDir` for this process, or throws DataDirLocked naming the holder. */
export function lockDataDir(dataDir: string): DataDirLock {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, LOCK_FILE);
  const me: Owner = { pid: process.pid, host: os.hostname(), started: processStart(process.pid) };
  // twice at most: a stale lock is removed once, then the exclusive create decides between racing starters
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx', mode: 0o600 });
      return held(file, me);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = readOwner(file);
    if (owner === 'gone') continue;
    if (heldHere.has(file)) throw new DataDirLocked(`DATA_DIR ${dataDir} is already open in this process`);
    if (owner && isAlive(owner, me)) {
      throw new DataDirLocked(
        `DATA_DIR ${dataDir} is in use by another server (pid ${owner.pid}${owner.host !== me.host ? ` on ${owner.host}` : ''}): ` +
          `stop it, or give this one another DATA_DIR${owner.host !== me.host ? ` (if that server is gone, remove ${file})` : ''}`,
      );
    }
    // stale (or unreadable, i.e. written by a process killed mid-write): removed, then created anew
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  throw new DataDirLocked(`DATA_DIR ${dataDir}: another server is starting on it at the same time`);
}

function held(file: string, me: Owner): DataDirLock {
  heldHere.add(file);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    heldHere.delete(file);
    process.removeListener('exit', release);
    // only our own lock: never one another process took over meanwhile
    const owner = readOwner(file);
    if (owner && owner !== 'gone' && owner.pid === me.pid && owner.started === me.started) {
      try {
        fs.unlinkSync(file);
      } catch {
        // already gone
      }
    }
  };
  // a process that exits without closing its database (process.exit on a fatal error) leaves no lock behind
  process.on('exit', release);
  return { file, release };
}

function readOwner(file: string): Owner | 'gone' | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw e;
  }
  try {
    const parsed = JSON.parse(text) as Partial<Owner>;
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string') return parsed as Owner;
  } catch {
    // partial write
  }
  return undefined;
}

function isAlive(owner: Owner, me: Owner): boolean {
  // on another host nothing can be checked: assume it runs
  if (owner.host !== me.host) return true;
  // our own pid: this process (it holds the lock: heldHere), or a previous life of this pid (a container restarted)
  if (owner.pid === me.pid) return owner.started === undefined || owner.started === me.started;
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    // EPERM: alive, another user's
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  const started = processStart(owner.pid);
  return !(owner.started && started && owner.started !== started);
}

/** Field 22 of /proc/<pid>/stat (start time after boot); undefined where there is no /proc. */
function processStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

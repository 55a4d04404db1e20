import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config/config';
import { FhirError } from '../errors';

/**
 * Where raw uploads wait between the client and the database: a private directory (0700,
 * files 0600) under the data directory, never the shared temporary directory. Each server
 * spools in a sub-directory of its own named after its process, so that a server starting
 * beside others removes what a dead process left and nothing that a live one is writing.
 * The bytes on disk at once are capped: past the cap an upload is answered 503 with
 * Retry-After (the server is busy, the upload itself is acceptable).
 */
export class UploadSpool {
  private inUse = 0;

  private constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  /** Creates (or secures) the spool root, removes what dead processes left there, and opens a directory of this server's own. */
  static open(root: string, maxBytes: number): UploadSpool {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    fs.chmodSync(root, 0o700);
    removeStale(root);
    const dir = fs.mkdtempSync(path.join(root, `${process.pid}-${PROCESS_STARTED}-`));
    fs.chmodSync(dir, 0o700);
    return new UploadSpool(dir, maxBytes);
  }

  /** Bytes currently held by spooled uploads (written or being written, not yet removed). */
  get bytesInUse(): number {
    return this.inUse;
  }

  /** A new file name in the spool; nothing is created yet. */
  newFile(): string {
    return path.join(this.dir, crypto.randomUUID());
  }

  /** Counts `bytes` against the cap, or refuses with 503 when they do not fit. */
  take(bytes: number): void {
    if (!this.fits(bytes)) throw busy();
    this.inUse += bytes;
  }

  fits(bytes: number): boolean {
    return this.inUse + bytes <= this.maxBytes;
  }

  give(bytes: number): void {
    this.inUse = Math.max(0, this.inUse - bytes);
  }

  /** Removes this server's directory and whatever is left in it. */
  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const RETRY_AFTER_SECONDS = 5;

/** The answer to an upload that does not fit in the spool now. */
export function busy(): FhirError {
  return new FhirError(
    503,
    [{ severity: 'error', code: 'transient', diagnostics: 'Too many uploads are in progress: retry this upload shortly' }],
    { 'Retry-After': String(RETRY_AFTER_SECONDS) },
  );
}

/** When this process started (milliseconds, whole): with the pid, it tells a live process's directory from one a dead process left under a reused pid. */
const PROCESS_STARTED = Math.round(performance.timeOrigin);

/** Removes every entry of the spool root that is not the directory of a live process. */
function removeStale(root: string): void {
  for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
    const m = /^(\d+)-(\d+)-/.exec(entry.name);
    const live = entry.isDirectory() && m !== null && isRunning(Number(m[1])) && (Number(m[1]) !== process.pid || Number(m[2]) === PROCESS_STARTED);
    if (!live) fs.rmSync(path.join(root, entry.name), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, under another user
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const spools = new WeakMap<Config, UploadSpool>();

/** The spool of a server configuration: opened at start-up (src/server.ts), or on first use. */
export function uploadSpool(config: Config): UploadSpool {
  let spool = spools.get(config);
  if (!spool) {
    spool = UploadSpool.open(config.spoolDir, config.spoolMaxBytes);
    spools.set(config, spool);
  }
  return spool;
}

export function closeUploadSpool(config: Config): void {
  spools.get(config)?.close();
  spools.delete(config);
}

import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ConformanceResource } from '../store/conformanceRows';
import type { VersionWrite } from '../store/writeVersions';

/**
 * Threads that validate and index a bulk load's resources in parallel
 * (docs/decisions/024-bulk-load.md, amendment): preparing a line is most of the loader's
 * CPU, and one thread bounds a load to one core. The loader's own thread keeps reading the
 * file, the database and the order of the lines; each thread gets a slice of a batch and
 * answers each line's version, or why it is refused, in the order it was sent.
 */

export interface PrepareItem {
  line: number;
  body: Record<string, unknown> & { resourceType: string; id: string };
}
export interface PrepareJob {
  job: number;
  lastUpdated: string;
  items: PrepareItem[];
}
export type PrepareResult = { line: number; version: VersionWrite } | { line: number; reason: string };

/** Lines per message: small enough to share a batch out evenly, large enough that messages cost little. */
const SLICE = 200;

/** The compiled worker: beside this file in the build, or the build's when this runs from the sources (the test suite). */
const WORKER_FILE = [path.join(__dirname, 'prepareWorker.js'), path.resolve(__dirname, '../../dist/src/load/prepareWorker.js')].find((f) => fs.existsSync(f)) ?? path.join(__dirname, 'prepareWorker.js');

export class PreparePool {
  private readonly idle: Worker[] = [];
  private readonly waiting = new Map<number, (results: PrepareResult[]) => void>();
  private nextJob = 0;
  private failure?: Error;
  private closing = false;

  private constructor(private readonly workers: Worker[]) {}

  /** Starts `size` threads, each with a validator that also knows `conformance` (what was stored through the API). */
  static async start(size: number, conformance: ConformanceResource[]): Promise<PreparePool> {
    if (!fs.existsSync(WORKER_FILE)) throw new Error(`${WORKER_FILE} is missing: preparing threads run from the compiled build (npm run build)`);
    const workers = Array.from({ length: size }, () => new Worker(WORKER_FILE, { workerData: { conformance } }));
    const pool = new PreparePool(workers);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const onReady = (m: { ready?: boolean }) => {
              if (!m.ready) return;
              w.off('message', onReady);
              w.off('error', reject);
              resolve();
            };
            w.on('message', onReady);
            w.once('error', reject);
          }),
      ),
    ).catch(async (e) => {
      await pool.close();
      throw e;
    });
    for (const w of workers) {
      w.on('message', (m: { job?: number; results?: PrepareResult[] }) => {
        if (m.job === undefined || !m.results) return;
        const done = pool.waiting.get(m.job);
        pool.waiting.delete(m.job);
        pool.idle.push(w);
        done?.(m.results.map(restoreBuffers));
        pool.dispatch();
      });
      // a thread that dies takes the load with it: the batch fails and the loader stops with the error
      w.on('error', (e) => pool.fail(e));
      w.on('exit', (code) => !pool.closing && pool.fail(new Error(`a preparing thread exited with code ${code}`)));
      pool.idle.push(w);
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  private queue: PrepareJob[] = [];

  /** Each line's version or refusal, in the order of `items`. */
  async prepare(items: PrepareItem[], lastUpdated: string): Promise<PrepareResult[]> {
    if (this.failure) throw this.failure;
    const slices: Promise<PrepareResult[]>[] = [];
    const per = Math.max(1, Math.min(SLICE, Math.ceil(items.length / this.workers.length)));
    for (let at = 0; at < items.length; at += per) {
      const job: PrepareJob = { job: this.nextJob++, lastUpdated, items: items.slice(at, at + per) };
      slices.push(new Promise((resolve) => this.waiting.set(job.job, resolve)));
      this.queue.push(job);
    }
    this.dispatch();
    const parts = await Promise.race([Promise.all(slices), this.failed()]);
    return parts.flat();
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) this.idle.pop()!.postMessage(this.queue.shift()!);
  }

  private failedWith?: Promise<never>;
  private rejectFailure?: (e: Error) => void;
  private failed(): Promise<never> {
    this.failedWith ??= new Promise<never>((_, reject) => (this.rejectFailure = reject));
    this.failedWith.catch(() => undefined);
    if (this.failure) this.rejectFailure!(this.failure);
    return this.failedWith;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.failed();
    this.rejectFailure?.(this.failure);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A Binary's content comes back from a thread as a Uint8Array: the writers want a Buffer. */
function restoreBuffers(r: PrepareResult): PrepareResult {
  if (!('version' in r)) return r;
  const binary = r.version.binary;
  if (binary && 'data' in binary && !Buffer.isBuffer(binary.data)) {
    const u8 = binary.data as Uint8Array;
    r.version.binary = { ...binary, data: Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength) };
  }
  return r;
}

import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DecimalTexts } from '../json/decimals';
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
  /** The text of the decimals a number would not give back (src/json/decimals.ts). */
  decimals?: DecimalTexts;
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
  private readonly queue: PrepareJob[] = [];
  /** The slices sent and not answered yet: their answer, or the pool's failure. */
  private readonly waiting = new Map<number, { resolve: (results: PrepareResult[]) => void; reject: (e: Error) => void }>();
  private nextJob = 0;
  private failure?: Error;
  private closing = false;

  private constructor(private readonly workers: Worker[]) {}

  /** Starts `size` threads, each with a validator that also knows `conformance` (what was stored through the API). */
  static async start(size: number, conformance: ConformanceResource[]): Promise<PreparePool> {
    if (!fs.existsSync(WORKER_FILE)) throw new Error(`${WORKER_FILE} is missing: preparing threads run from the compiled build (npm run build)`);
    const pool = new PreparePool(Array.from({ length: size }, () => new Worker(WORKER_FILE, { workerData: { conformance } })));
    try {
      await Promise.all(pool.workers.map(ready));
    } catch (e) {
      await pool.close();
      throw e;
    }
    for (const w of pool.workers) {
      w.on('message', (m: { job?: number; results?: PrepareResult[] }) => {
        if (m.job === undefined || !m.results) return;
        const waiting = pool.waiting.get(m.job);
        pool.waiting.delete(m.job);
        pool.idle.push(w);
        waiting?.resolve(m.results.map(restoreBuffers));
        pool.dispatch();
      });
      // a thread that dies takes the load with it: the batch fails and the loader stops with the error
      w.on('error', (e) => pool.fail(e));
      w.on('exit', (code) => pool.fail(new Error(`a preparing thread exited with code ${code}`)));
      pool.idle.push(w);
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /** Each line's version or refusal, in the order of `items`. */
  async prepare(items: PrepareItem[], lastUpdated: string): Promise<PrepareResult[]> {
    if (this.failure) throw this.failure;
    const slices: Promise<PrepareResult[]>[] = [];
    const per = Math.max(1, Math.min(SLICE, Math.ceil(items.length / this.workers.length)));
    for (let at = 0; at < items.length; at += per) {
      const job: PrepareJob = { job: this.nextJob++, lastUpdated, items: items.slice(at, at + per) };
      slices.push(new Promise((resolve, reject) => this.waiting.set(job.job, { resolve, reject })));
      this.queue.push(job);
    }
    this.dispatch();
    return (await Promise.all(slices)).flat();
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) this.idle.pop()!.postMessage(this.queue.shift()!);
  }

  private fail(e: Error): void {
    if (this.closing) return;
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(this.failure);
    this.waiting.clear();
    this.queue.length = 0;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A thread is ready once its validator is built (its first message), or failed. */
function ready(w: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = (m: { ready?: boolean }) => {
      if (!m.ready) return;
      w.off('message', onReady);
      w.off('error', reject);
      resolve();
    };
    w.on('message', onReady);
    w.once('error', reject);
  });
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

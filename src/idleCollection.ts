import type http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * A full garbage collection once the server has been idle for a few seconds after serving
 * requests (docs/decisions/027-embedded-memory.md).
 *
 * Under load the process keeps what its requests left: garbage buffers that V8 frees only
 * at its next full collection (and only then can the C allocator give their pages back),
 * and a young generation grown to its largest, which V8 shrinks only after a full
 * collection followed by a quiet spell (its memory reducer). Left alone, an idle server
 * may wait minutes for either. One collection when the requests stop (a few tens of
 * milliseconds of CPU) starts both.
 */

/** Idle this long after the last request ended: the collection. */
export const IDLE_COLLECTION_DELAY_MS = 5000;

export interface IdleCollectionOptions {
  delayMs?: number;
  /** What to run when idle; a full collection by default. */
  collect?: () => void;
  /** setTimeout and clearTimeout by default (a test schedules by hand). */
  timers?: { set(run: () => void, ms: number): unknown; clear(handle: unknown): void };
}

export interface IdleCollection {
  /** Collections run so far. */
  readonly runs: number;
  close(): void;
}

const nodeTimers = {
  set(run: () => void, ms: number): unknown {
    const timer = setTimeout(run, ms);
    // never what keeps the process alive
    timer.unref();
    return timer;
  },
  clear(handle: unknown): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/**
 * Watches `server`'s requests: when the last one in flight ends, a collection is scheduled
 * `delayMs` later; a request that starts meanwhile cancels it. At most one collection per
 * idle spell: none again until a request has been served.
 */
export function collectWhenIdle(server: http.Server, options: IdleCollectionOptions = {}): IdleCollection {
  const delayMs = options.delayMs ?? IDLE_COLLECTION_DELAY_MS;
  const timers = options.timers ?? nodeTimers;
  let collect = options.collect;
  let inFlight = 0;
  let pending: unknown;
  let runs = 0;
  let closed = false;
  const cancel = () => {
    if (pending !== undefined) timers.clear(pending);
    pending = undefined;
  };
  const idle = () => {
    pending = undefined;
    if (closed || inFlight > 0) return;
    collect ??= fullCollection();
    runs++;
    collect();
  };
  const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight++;
    cancel();
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0 && !closed) pending = timers.set(idle, delayMs);
    });
  };
  server.on('request', onRequest);
  return {
    get runs() {
      return runs;
    },
    close() {
      closed = true;
      cancel();
      server.off('request', onRequest);
    },
  };
}

/**
 * V8's `gc()`, which it gives only to a context made while `--expose-gc` is set: a new one,
 * made for the purpose. The flag is set back at once, so that no other context gets it.
 */
export function fullCollection(): () => void {
  // started with --expose-gc: the global one
  const global = (globalThis as { gc?: () => void }).gc;
  if (typeof global === 'function') return global;
  v8.setFlagsFromString('--expose-gc');
  try {
    return vm.runInNewContext('gc') as () => void;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

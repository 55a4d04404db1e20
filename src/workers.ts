import cluster, { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config/config';
import { openDatabase } from './store/database';

/**
 * The primary process of `WORKERS=n` (docs/decisions/022-workers.md): applies the
 * migrations once, forks the workers that serve the port, replaces one that dies, stops
 * them all on SIGTERM/SIGINT. It serves nothing and keeps no pool open.
 */

/** Set by the primary in the environment of the one worker that runs the subscription dispatcher. */
export const DISPATCHING_WORKER = 'FHIR_DISPATCHING_WORKER';

/** Whether this process runs the in-process dispatcher: a single process does, and one worker of a cluster. */
export function dispatchesHere(): boolean {
  return !cluster.isWorker || process.env[DISPATCHING_WORKER] === '1';
}

/** A worker that dies sooner than this after it started listening is not replaced again and again: the server stops. */
const MIN_LIFETIME_MS = 5000;

export async function runPrimary(config: Config, log: Logger): Promise<void> {
  // the migrations run here, once: workers then find nothing to do (and a failure is one line)
  const db = await openDatabase(config);
  await db.close();

  let stopping = false;
  let failed = false;
  let dispatcher: Worker | undefined;
  const alive = new Set<Worker>();
  const listeningSince = new Map<Worker, number>();
  let listening = 0;

  const fork = (dispatches: boolean) => {
    const worker = cluster.fork(dispatches ? { [DISPATCHING_WORKER]: '1' } : {});
    alive.add(worker);
    if (dispatches) dispatcher = worker;
    worker.once('listening', () => {
      listeningSince.set(worker, Date.now());
      if (++listening === config.workers) log.info({ workers: config.workers, port: config.port }, 'FHIR server listening with workers');
    });
    worker.once('exit', (code, signal) => {
      alive.delete(worker);
      if (stopping && alive.size === 0) {
        log.info('stopped');
        process.exit(failed ? 1 : 0);
      }
      const since = listeningSince.get(worker);
      listeningSince.delete(worker);
      if (since !== undefined) listening--;
      const wasDispatcher = dispatcher === worker;
      if (wasDispatcher) dispatcher = undefined;
      if (stopping) return;
      // a worker that never started (port in use, database unreachable) would fail the same way again
      if (since === undefined || Date.now() - since < MIN_LIFETIME_MS) {
        log.error({ pid: worker.process.pid, code, signal }, 'a worker stopped while starting: stopping the server');
        failed = true;
        stop();
        return;
      }
      log.error({ pid: worker.process.pid, code, signal }, 'a worker stopped: starting another');
      fork(wasDispatcher);
    });
  };

  const stop = () => {
    if (stopping && !failed) return;
    stopping = true;
    for (const worker of alive) worker.process.kill('SIGTERM');
  };
  process.on('SIGTERM', () => {
    log.info({ signal: 'SIGTERM' }, 'shutting down the workers: finishing in-flight requests');
    stop();
  });
  process.on('SIGINT', () => {
    log.info({ signal: 'SIGINT' }, 'shutting down the workers: finishing in-flight requests');
    stop();
  });

  for (let i = 0; i < config.workers; i++) fork(i === 0);
}

import type http from 'node:http';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { collectWhenIdle, fullCollection } from './idleCollection';
import type { Database } from './store/database';
import { runPostgresUpkeep, runUpkeep, UpkeepPlan } from './store/tableUpkeep';

/**
 * When autovacuum's work is done by the server (docs/decisions/037-embedded-upkeep.md and its
 * amendments):
 * - embedded: the whole pass in each idle spell, followed by the memory collection of
 *   decision 027; the analyse half every `intervalMs` while requests are served;
 * - PostgreSQL: every `intervalMs`, for the tables autovacuum does not serve, one process of
 *   the database at a time.
 * One pass at a time in a process: a pass due while another runs is skipped.
 */
export interface UpkeepSchedule {
  /** Stops the timers; resolves once a pass in progress has ended. */
  close(): Promise<void>;
}

export function scheduleUpkeep(server: http.Server, db: Database, intervalMs: number, log: Logger): UpkeepSchedule {
  let running: Promise<void> | undefined;
  const start = (pass: () => Promise<void>) => {
    if (running) return running;
    running = pass().finally(() => (running = undefined));
    return running;
  };
  let served = 0;
  const onRequest = () => served++;
  server.on('request', onRequest);
  let idle: { close(): void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (db.kind === 'embedded') {
    // when the requests stop: the whole pass, then the memory the load and the pass left given back
    idle = collectWhenIdle(server, {
      collect: () =>
        void start(() => embeddedPass(db.knex, log, true)).then(() => {
          collectGarbage ??= fullCollection();
          collectGarbage();
        }),
    });
    let servedAtLastPass = 0;
    if (intervalMs > 0) {
      timer = setInterval(() => {
        // requests that never stop leave no idle spell: their tables are analysed meanwhile
        if (served === servedAtLastPass) return;
        servedAtLastPass = served;
        void start(() => embeddedPass(db.knex, log, false));
      }, intervalMs);
    }
  } else if (intervalMs > 0) {
    timer = setInterval(() => void start(() => postgresPass(db.knex, log)), intervalMs);
  }
  timer?.unref();
  return {
    close: async () => {
      clearInterval(timer);
      idle?.close();
      server.off('request', onRequest);
      await running;
    },
  };
}

let collectGarbage: (() => void) | undefined;

const did = (plan: UpkeepPlan | undefined) => plan && (plan.analyze.length > 0 || plan.vacuum.length > 0);

/** A pass on the embedded database (`vacuum`: the idle spell's whole pass); a failure is only logged. */
async function embeddedPass(knex: Knex, log: Logger, vacuum: boolean): Promise<void> {
  try {
    const done = await runUpkeep(knex, true, { vacuum });
    if (did(done)) log.debug({ analyzed: done.analyze, vacuumed: done.vacuum }, 'embedded database upkeep');
  } catch (e) {
    log.warn({ err: e }, 'embedded database upkeep failed');
  }
}

/** A pass on PostgreSQL; a failure is only logged. */
async function postgresPass(knex: Knex, log: Logger): Promise<void> {
  try {
    const done = await runPostgresUpkeep(knex);
    if (did(done)) log.info({ analyzed: done!.analyze, vacuumed: done!.vacuum }, 'database upkeep: tables autovacuum does not serve');
  } catch (e) {
    log.warn({ err: e }, 'database upkeep failed');
  }
}

import type { Knex } from 'knex';

/**
 * Autovacuum's work where nothing else does it (docs/decisions/037-embedded-upkeep.md): on the
 * embedded database, which has no background worker, every table; on PostgreSQL, the tables
 * autovacuum does not serve (turned off for the cluster or for the table). The tables whose
 * change counters passed autovacuum's default thresholds are analysed and vacuumed, one
 * statement per table.
 */

/** A table's counters, as pg_stat_user_tables and pg_class give them. */
export interface TableCounters {
  table: string;
  /** pg_class.reltuples: the rows at the last analyse or vacuum; negative when never analysed. */
  rows: number;
  changedSinceAnalyze: number;
  deadRows: number;
  /** Autovacuum does this table's work (never on the embedded database). */
  autovacuumed: boolean;
}

export interface UpkeepPlan {
  analyze: string[];
  vacuum: string[];
}

// autovacuum's defaults (autovacuum_analyze_threshold / _scale_factor, autovacuum_vacuum_threshold / _scale_factor)
const ANALYZE_BASE = 50;
const ANALYZE_SCALE = 0.1;
const VACUUM_BASE = 50;
const VACUUM_SCALE = 0.2;

/** Which tables to analyse and to vacuum: autovacuum's rules, a table never analysed counting as empty, none autovacuum serves. */
export function planUpkeep(tables: TableCounters[]): UpkeepPlan {
  const plan: UpkeepPlan = { analyze: [], vacuum: [] };
  for (const t of tables) {
    if (t.autovacuumed) continue;
    const rows = Math.max(t.rows, 0);
    const neverAnalyzed = t.rows < 0;
    if ((neverAnalyzed && t.changedSinceAnalyze > 0) || t.changedSinceAnalyze > ANALYZE_BASE + ANALYZE_SCALE * rows) plan.analyze.push(t.table);
    if (t.deadRows > VACUUM_BASE + VACUUM_SCALE * rows) plan.vacuum.push(t.table);
  }
  return plan;
}

const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Statements on one connection (a pass's own, on PostgreSQL). */
type Run = (sql: string) => Promise<{ rows: Record<string, unknown>[] }>;

const onKnex = (knex: Knex): Run => (sql) => knex.raw(sql) as unknown as Promise<{ rows: Record<string, unknown>[] }>;

/**
 * The counters of the current schema's tables. `embedded`: no autovacuum serves any of them,
 * and single-user mode publishes the counters only when asked. On PostgreSQL a table is
 * autovacuum's when autovacuum and track_counts are on and its `autovacuum_enabled` is not false.
 */
export async function tableCounters(knex: Knex, embedded: boolean): Promise<TableCounters[]> {
  return countersOn(onKnex(knex), embedded);
}

async function countersOn(run: Run, embedded: boolean): Promise<TableCounters[]> {
  if (embedded) await run('SELECT pg_stat_force_next_flush()');
  const autovacuumed = embedded
    ? 'false'
    : `(current_setting('autovacuum')::boolean AND current_setting('track_counts')::boolean
        AND COALESCE((SELECT o.option_value::boolean FROM pg_options_to_table(c.reloptions) o WHERE o.option_name = 'autovacuum_enabled'), true))`;
  const res = await run(
    `SELECT s.relname, c.reltuples, s.n_mod_since_analyze::text AS mod, s.n_dead_tup::text AS dead, ${autovacuumed} AS autovacuumed
       FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
      WHERE s.schemaname = current_schema()
      ORDER BY s.relname`,
  );
  return res.rows.map((r) => ({ table: String(r.relname), rows: Number(r.reltuples), changedSinceAnalyze: Number(r.mod), deadRows: Number(r.dead), autovacuumed: r.autovacuumed === true }));
}

/**
 * One pass: the tables past the thresholds vacuumed (with their statistics) or analysed; what
 * was done. `vacuum: false`: the statistics only (a pass among requests, decision 037).
 */
export async function runUpkeep(knex: Knex, embedded: boolean, { vacuum = true }: { vacuum?: boolean } = {}): Promise<UpkeepPlan> {
  return passOn(onKnex(knex), embedded, vacuum);
}

async function passOn(run: Run, embedded: boolean, vacuum = true): Promise<UpkeepPlan> {
  const planned = planUpkeep(await countersOn(run, embedded));
  const plan = vacuum ? planned : { analyze: planned.analyze, vacuum: [] };
  for (const table of plan.vacuum) await run(`VACUUM (ANALYZE) ${quoted(table)}`);
  // a vacuumed table was analysed with it
  const analyzeOnly = plan.analyze.filter((t) => !plan.vacuum.includes(t));
  for (const table of analyzeOnly) await run(`ANALYZE ${quoted(table)}`);
  return plan;
}

// one pass at a time per schema of a database, whichever process runs it (workers, other servers)
const LOCK_KEY = `hashtext('table upkeep ' || current_schema())`;

/**
 * A pass on PostgreSQL, on a connection of its own taken from the pool: under a session
 * advisory lock (a pass already running elsewhere: `undefined`, nothing done), without the
 * pool's statement_timeout (a VACUUM of a large table outlasts any request), both given back.
 */
export async function runPostgresUpkeep(knex: Knex): Promise<UpkeepPlan | undefined> {
  const client = knex.client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<unknown> };
  const connection = await client.acquireConnection();
  const run: Run = (sql) => knex.raw(sql).connection(connection as never) as unknown as Promise<{ rows: Record<string, unknown>[] }>;
  try {
    if ((await run(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS locked`)).rows[0].locked !== true) return undefined;
    try {
      const timeout = String((await run(`SELECT current_setting('statement_timeout') AS t`)).rows[0].t);
      await run('SET statement_timeout = 0');
      try {
        return await passOn(run, false);
      } finally {
        await run(`SET statement_timeout = '${timeout.replace(/'/g, "''")}'`);
      }
    } finally {
      await run(`SELECT pg_advisory_unlock(${LOCK_KEY})`);
    }
  } finally {
    await client.releaseConnection(connection);
  }
}

import type { Knex } from 'knex';

/**
 * Autovacuum's work on the embedded database, which has no background worker to do it
 * (docs/decisions/037-embedded-upkeep.md): the tables whose change counters passed
 * autovacuum's default thresholds are analysed and vacuumed, one statement per table.
 */

/** A table's counters, as pg_stat_user_tables and pg_class give them. */
export interface TableCounters {
  table: string;
  /** pg_class.reltuples: the rows at the last analyse or vacuum; negative when never analysed. */
  rows: number;
  changedSinceAnalyze: number;
  deadRows: number;
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

/** Which tables to analyse and to vacuum: autovacuum's rules, a table never analysed counting as empty. */
export function planUpkeep(tables: TableCounters[]): UpkeepPlan {
  const plan: UpkeepPlan = { analyze: [], vacuum: [] };
  for (const t of tables) {
    const rows = Math.max(t.rows, 0);
    const neverAnalyzed = t.rows < 0;
    if ((neverAnalyzed && t.changedSinceAnalyze > 0) || t.changedSinceAnalyze > ANALYZE_BASE + ANALYZE_SCALE * rows) plan.analyze.push(t.table);
    if (t.deadRows > VACUUM_BASE + VACUUM_SCALE * rows) plan.vacuum.push(t.table);
  }
  return plan;
}

const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The counters of the current schema's tables, flushed first (single-user mode publishes them only when asked). */
export async function tableCounters(knex: Knex): Promise<TableCounters[]> {
  await knex.raw('SELECT pg_stat_force_next_flush()');
  const res = await knex.raw<{ rows: { relname: string; reltuples: number; mod: string; dead: string }[] }>(
    `SELECT s.relname, c.reltuples, s.n_mod_since_analyze::text AS mod, s.n_dead_tup::text AS dead
       FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
      WHERE s.schemaname = current_schema()
      ORDER BY s.relname`,
  );
  return res.rows.map((r) => ({ table: r.relname, rows: Number(r.reltuples), changedSinceAnalyze: Number(r.mod), deadRows: Number(r.dead) }));
}

/** One pass: the tables past the thresholds vacuumed (with their statistics) or analysed; what was done. */
export async function runUpkeep(knex: Knex): Promise<UpkeepPlan> {
  const plan = planUpkeep(await tableCounters(knex));
  for (const table of plan.vacuum) await knex.raw(`VACUUM (ANALYZE) ${quoted(table)}`);
  // a vacuumed table was analysed with it
  const analyzeOnly = plan.analyze.filter((t) => !plan.vacuum.includes(t));
  for (const table of analyzeOnly) await knex.raw(`ANALYZE ${quoted(table)}`);
  return plan;
}

import type { Knex } from 'knex';

/**
 * Token lookups filter on (resource_type, param, code, system) together. With per-column
 * statistics PostgreSQL multiplies their selectivities as if independent and estimates a
 * frequent document type at a handful of rows, then starts from it instead of from the
 * patient: multivariate statistics with a large MCV list fix the estimate
 * (docs/operations/search-benchmarks.md).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE STATISTICS IF NOT EXISTS idx_token_lookup_stats (mcv, dependencies) ON resource_type, param, code, system FROM idx_token');
  await knex.raw('ALTER STATISTICS idx_token_lookup_stats SET STATISTICS 1000');
  // an existing database gets the new statistics now, not at the next autovacuum
  await knex.raw('ANALYZE idx_token');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP STATISTICS IF EXISTS idx_token_lookup_stats');
}

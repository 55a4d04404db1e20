import type { Knex } from 'knex';
import { textArray } from './searchSql';

/**
 * Retention of the audit trail (docs/decisions/009-audit.md): AuditEvents older than the
 * period are deleted physically — current rows, history rows and index rows — by batches
 * of (compartment, id), each batch its own transaction, so that a purge stopped midway
 * resumes where it was. The trail is not clinical data: nothing of it is kept as history.
 */

const INDEX_TABLES = ['idx_token', 'idx_string', 'idx_reference', 'idx_date', 'idx_number', 'idx_quantity', 'idx_uri'];

/** Deletes up to `batch` AuditEvents recorded before `before` (ISO instant); the number deleted (0: done). */
export async function purgeAuditBatch(knex: Knex, before: string, batch: number): Promise<number> {
  return knex.transaction(async (trx) => {
    // an event's lastUpdated is its `recorded` (written once, never updated)
    const picked = await trx.raw(
      `SELECT compartment, id FROM resource
        WHERE resource_type = 'AuditEvent' AND last_updated < ?
        ORDER BY last_updated LIMIT ? FOR UPDATE SKIP LOCKED`,
      [before, batch],
    );
    const keys = (picked.rows as { compartment: string; id: string }[]).map((r) => ({ compartment: r.compartment, id: r.id }));
    if (keys.length === 0) return 0;
    // by full key, the compartments also as a plain array: only their partitions are addressed
    const compartments = textArray(keys.map((k) => k.compartment));
    const ids = textArray(keys.map((k) => k.id));
    const match = (alias: string, id: string) =>
      `${alias}.compartment = ANY(?::text[]) AND ${alias}.resource_type = 'AuditEvent' AND (${alias}.compartment, ${alias}.${id}) IN (SELECT * FROM unnest(?::text[], ?::text[]))`;
    for (const table of INDEX_TABLES) await trx.raw(`DELETE FROM ${table} t WHERE ${match('t', 'resource_id')}`, [compartments, compartments, ids]);
    await trx.raw(`DELETE FROM resource_history h WHERE ${match('h', 'id')}`, [compartments, compartments, ids]);
    await trx.raw(`DELETE FROM resource r WHERE ${match('r', 'id')}`, [compartments, compartments, ids]);
    await trx.raw(`DELETE FROM resource_locator l WHERE l.resource_type = 'AuditEvent' AND l.id = ANY(?::text[])`, [ids]);
    return keys.length;
  });
}

/** How many AuditEvents were recorded before `before` (the progress of a purge). */
export async function countAuditBefore(knex: Knex, before: string): Promise<number> {
  const res = await knex.raw(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'AuditEvent' AND last_updated < ?`, [before]);
  return Number(res.rows[0].n);
}

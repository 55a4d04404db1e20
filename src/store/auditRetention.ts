import type { Knex } from 'knex';

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
    const json = JSON.stringify(keys);
    const using = `USING json_to_recordset(?::json) AS k(compartment text, id text)`;
    for (const table of INDEX_TABLES) {
      await trx.raw(`DELETE FROM ${table} t ${using} WHERE t.compartment = k.compartment AND t.resource_type = 'AuditEvent' AND t.resource_id = k.id`, [json]);
    }
    await trx.raw(`DELETE FROM resource_history h ${using} WHERE h.compartment = k.compartment AND h.resource_type = 'AuditEvent' AND h.id = k.id`, [json]);
    await trx.raw(`DELETE FROM resource r ${using} WHERE r.compartment = k.compartment AND r.resource_type = 'AuditEvent' AND r.id = k.id`, [json]);
    return keys.length;
  });
}

/** How many AuditEvents were recorded before `before` (the progress of a purge). */
export async function countAuditBefore(knex: Knex, before: string): Promise<number> {
  const res = await knex.raw(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'AuditEvent' AND last_updated < ?`, [before]);
  return Number(res.rows[0].n);
}

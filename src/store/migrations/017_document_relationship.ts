import type { Knex } from 'knex';
import { extractIndexRows } from '../../search/extract';
import type { IndexKind } from '../../search/indexRows';
import { SearchParameterRegistry } from '../../search/searchParameters';
import { indexTableRows, INDEX_COLUMNS, VersionWrite } from '../writeVersions';

/**
 * DocumentReference `relationship` (a composite of `relatesto` and `relation`) is published
 * in R4 with its components' expressions crossed, and was indexed so: it never matched
 * (src/search/searchParameters.ts, COMPONENT_CORRECTIONS). The rows of the documents that
 * relate to others are written again with the corrected expressions; new versions are
 * indexed right by the write path.
 */
const PARAMS = ['relationship$0', 'relationship$1'];
const BATCH = 500;

export async function up(knex: Knex): Promise<void> {
  const registry = SearchParameterRegistry.official();
  let after = '';
  for (;;) {
    const found = (await knex.raw(
      `SELECT compartment, id, body::text AS body FROM resource
        WHERE resource_type = 'DocumentReference' AND NOT deleted AND json_typeof(body::json -> 'relatesTo') = 'array' AND (compartment || '/' || id) > ?
        ORDER BY compartment || '/' || id LIMIT ${BATCH}`,
      [after],
    )) as { rows: { compartment: string; id: string; body: string }[] };
    const rows = found.rows;
    if (rows.length === 0) return;
    after = `${rows[rows.length - 1].compartment}/${rows[rows.length - 1].id}`;
    const writes = rows.map((r) => {
      const index = extractIndexRows(JSON.parse(r.body), registry);
      for (const kind of Object.keys(index) as IndexKind[]) (index[kind] as { param: string }[]) = (index[kind] as { param: string }[]).filter((row) => PARAMS.includes(row.param));
      return { compartment: r.compartment, resourceType: 'DocumentReference', id: r.id, index } as unknown as VersionWrite;
    });
    for (const kind of ['reference', 'token'] as IndexKind[]) {
      await knex.raw(`DELETE FROM idx_${kind} WHERE compartment = ANY(?::text[]) AND resource_type = 'DocumentReference' AND resource_id = ANY(?::text[]) AND param IN ('relationship$0', 'relationship$1')`, [
        rows.map((r) => r.compartment),
        rows.map((r) => r.id),
      ]);
      const inserts = indexTableRows(writes, kind);
      if (inserts.length === 0) continue;
      const cols = INDEX_COLUMNS[kind];
      await knex.raw(
        `INSERT INTO idx_${kind} (compartment, resource_type, resource_id, param, grp, ${cols.map(([c]) => c).join(', ')})
         SELECT c, t, i, p, g, ${cols.map(([c]) => c).join(', ')} FROM json_to_recordset(?::json) AS x(c text, t text, i text, p text, g integer, ${cols.map(([c, , type]) => `${c} ${type}`).join(', ')})`,
        [JSON.stringify(inserts)],
      );
    }
  }
}

export async function down(): Promise<void> {
  // the crossed rows matched nothing: there is nothing to restore
}

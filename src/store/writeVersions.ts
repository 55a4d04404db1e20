import { byKeys } from './locator';
import type { Knex } from 'knex';
import type { IndexKind, IndexRows } from '../search/indexRows';
import { BinarySource, writeBinaryContent } from './binaryContent';
import type { ContainedReference, LocalReference, PlaceholderReference } from '../integrity/references';
import { claimsUniqueIdentifiers, IdentifierClaim } from '../integrity/uniqueIdentifiers';
import { textArray } from './searchSql';
import { runStatement } from './statement';

/** One new version of a resource, with everything the store writes for it. */
export interface VersionWrite {
  compartment: string;
  resourceType: string;
  id: string;
  versionId: number;
  /** ISO instant, also written into body.meta.lastUpdated. */
  lastUpdated: string;
  deleted: boolean;
  /** The interaction that made this version, shown in history. */
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The resource with meta.versionId/lastUpdated set; null for a deletion. */
  body: object | null;
  /** `body` serialised once, for the database and the response alike. */
  bodyText: string | null;
  /** Index rows of this version; empty for a deletion. */
  index: IndexRows | null;
  /** The compartment of the version this one replaces; undefined when the resource is new. */
  previousCompartment?: string;
  /**
   * The version this one replaces, as the interaction read and locked it (null when that
   * version is a deletion); absent when the interaction did not read its body, and the
   * policy then reads it.
   */
  previousBody?: Record<string, unknown> | null;
  /** A PUT whose id the server drew (a conditional update that matched nothing): it cannot land on an existing row. */
  idDrawnByServer?: boolean;
  /** Raw content of a Binary, stored apart from its metadata. */
  binary?: BinarySource;
  /** The references the server resolves (docs/decisions/014-integrity.md); the local ones are kept as links. */
  references?: (LocalReference | ContainedReference | PlaceholderReference)[];
  /**
   * `Type/id` of the local targets the replaced version already referenced: they may be
   * hidden from this writer, who keeps them without being shown them (decision 013), so
   * they must exist but need not be readable by the writer (decision 014).
   */
  keptReferences?: Set<string>;
  /** The national identifiers this version claims (docs/decisions/014-integrity.md). */
  claims?: IdentifierClaim[];
  /** A Subscription's writer, whose access its criteria are searched with (docs/decisions/010-subscriptions.md). */
  subscriptionOwner?: object;
}

/** Columns of each index table after (compartment, resource_type, resource_id, param), with their SQL types. */
export const INDEX_COLUMNS: Record<IndexKind, [column: string, field: string, sqlType: string][]> = {
  token: [['system', 'system', 'text'], ['code', 'code', 'text'], ['text', 'text', 'text']],
  string: [['value', 'value', 'text'], ['exact', 'exact', 'text']],
  reference: [
    ['target_type', 'targetType', 'text'],
    ['target_id', 'targetId', 'text'],
    ['target_version', 'targetVersion', 'text'],
    ['url', 'url', 'text'],
    ['identifier_system', 'identifierSystem', 'text'],
    ['identifier_value', 'identifierValue', 'text'],
  ],
  date: [['low', 'low', 'timestamptz'], ['high', 'high', 'timestamptz']],
  number: [['value', 'value', 'numeric']],
  quantity: [['value', 'value', 'numeric'], ['system', 'system', 'text'], ['code', 'code', 'text'], ['unit', 'unit', 'text']],
  uri: [['value', 'value', 'text']],
};
export const KINDS = Object.keys(INDEX_COLUMNS) as IndexKind[];

/** A row of `resource_link`: referrer (compartment, type, id) and target (type, id). */
export interface LinkRow {
  c: string;
  t: string;
  i: string;
  tt: string;
  ti: string;
}

/** The `resource_link` rows of these versions: their local references, once per target. */
export function linkRows(writes: VersionWrite[]): LinkRow[] {
  const links: LinkRow[] = [];
  for (const w of writes) {
    if (!w.references) continue;
    const seen = new Set<string>();
    for (const r of w.references) {
      if (r.kind !== 'local' || seen.has(`${r.targetType}/${r.targetId}`)) continue;
      seen.add(`${r.targetType}/${r.targetId}`);
      links.push({ c: w.compartment, t: w.resourceType, i: w.id, tt: r.targetType, ti: r.targetId });
    }
  }
  return links;
}

/**
 * The `idx_<kind>` rows of these versions: `c`, `t`, `i`, `p`, `g` (compartment, type, id,
 * param, group), then the kind's columns of INDEX_COLUMNS by column name.
 */
export function indexTableRows(writes: VersionWrite[], kind: IndexKind): Record<string, unknown>[] {
  const cols = INDEX_COLUMNS[kind];
  const rows: Record<string, unknown>[] = [];
  for (const w of writes) {
    if (!w.index) continue;
    for (const row of w.index[kind] as unknown as Record<string, unknown>[]) {
      const out: Record<string, unknown> = { c: w.compartment, t: w.resourceType, i: w.id, p: row.param, g: row.group ?? null };
      for (const [column, field] of cols) out[column] = row[field] ?? null;
      // open date ranges are stored as ±infinity so that range conditions stay sargable
      if (kind === 'date') {
        out.low ??= '-infinity';
        out.high ??= 'infinity';
      }
      rows.push(out);
    }
  }
  return rows;
}

/** The parts of the write statement that remove and insert the index rows of a kind. */
const DELETE_INDEX_ROWS = Object.fromEntries(
  KINDS.map((kind) => [
    kind,
    `del_${kind} AS (DELETE FROM idx_${kind} t USING old o
           WHERE t.compartment = ANY(?::text[]) AND t.compartment = o.compartment AND t.resource_type = o.resource_type AND t.resource_id = o.id)`,
  ]),
) as Record<IndexKind, string>;
const INSERT_INDEX_ROWS = Object.fromEntries(
  KINDS.map((kind) => {
    const cols = INDEX_COLUMNS[kind];
    const columnList = cols.map(([c]) => c).join(', ');
    const typed = cols.map(([c, , type]) => `${c} ${type}`).join(', ');
    return [
      kind,
      `ins_${kind} AS (INSERT INTO idx_${kind} (compartment, resource_type, resource_id, param, grp, ${columnList})
         SELECT c, t, i, p, g, ${columnList} FROM json_to_recordset(?::json) AS x(c text, t text, i text, p text, g integer, ${typed}))`,
    ];
  }),
) as Record<IndexKind, string>;

/** The text of each write statement, by its name. */
const writeTexts = new Map<string, string>();

/**
 * Writes versions as ONE statement: current rows (upsert), history rows, stale index rows
 * removed, new index rows inserted, all through data-modifying CTEs fed by JSON arrays.
 * A resource that moved to another compartment first loses its old current row.
 */
export async function executeWrites(db: Knex | Knex.Transaction, writes: VersionWrite[]): Promise<void> {
  if (writes.length === 0) return;
  const moved = writes.filter((w) => w.previousCompartment !== undefined && w.previousCompartment !== w.compartment);
  if (moved.length > 0) {
    // by the full key, the compartments as an array parameter: only their partitions are addressed
    const keys = [textArray(moved.map((w) => w.previousCompartment!)), textArray(moved.map((w) => w.resourceType)), textArray(moved.map((w) => w.id))];
    await db.raw(`DELETE FROM resource r WHERE ${byKeys('r')}`, [keys[0], ...keys]);
  }

  const bindings: unknown[] = [];
  const ctes: string[] = [];
  // the body goes in as the text already made, not serialised a second time
  bindings.push(
    `[${writes
      .map((w) => {
        const head = JSON.stringify({
          compartment: w.compartment,
          resource_type: w.resourceType,
          id: w.id,
          version_id: w.versionId,
          last_updated: w.lastUpdated,
          deleted: w.deleted,
          method: w.method,
        });
        return `${head.slice(0, -1)},"body":${w.bodyText ?? 'null'}}`;
      })
      .join(',')}]`,
  );
  ctes.push(
    `input AS (SELECT * FROM json_to_recordset(?::json) AS x(compartment text, resource_type text, id text, version_id integer, last_updated timestamptz, deleted boolean, method text, body json))`,
    `cur AS (INSERT INTO resource (compartment, resource_type, id, version_id, last_updated, deleted, body)
       SELECT compartment, resource_type, id, version_id, last_updated, deleted, body FROM input
       ON CONFLICT (compartment, resource_type, id) DO UPDATE SET version_id = EXCLUDED.version_id,
         last_updated = EXCLUDED.last_updated, deleted = EXCLUDED.deleted, body = EXCLUDED.body)`,
    `hist AS (INSERT INTO resource_history (compartment, resource_type, id, version_id, last_updated, deleted, method, body)
       SELECT compartment, resource_type, id, version_id, last_updated, deleted, method, body FROM input)`,
    // every change but the audit trail's own events is offered to the Subscriptions, committed with the change
    `outbox_rows AS (INSERT INTO outbox (compartment, resource_type, resource_id, version_id, deleted)
       SELECT compartment, resource_type, id, version_id, deleted FROM input WHERE resource_type <> 'AuditEvent')`,
  );
  // ids stay unique through the locator's key (docs/decisions/018-partitioning.md): a new
  // resource is inserted there, and a concurrent create of the same id fails (23505, retried)
  const created = writes.filter((w) => w.previousCompartment === undefined);
  if (created.length > 0) {
    bindings.push(textArray(created.map((w) => w.resourceType)), textArray(created.map((w) => w.id)), textArray(created.map((w) => w.compartment)));
    ctes.push(`loc_new AS (INSERT INTO resource_locator (resource_type, id, compartment) SELECT * FROM unnest(?::text[], ?::text[], ?::text[]))`);
  }
  // a resource that moves keeps the list of the compartments its older versions stay in
  if (moved.length > 0) {
    bindings.push(textArray(moved.map((w) => w.resourceType)), textArray(moved.map((w) => w.id)), textArray(moved.map((w) => w.compartment)), textArray(moved.map((w) => w.previousCompartment!)));
    ctes.push(
      `loc_moved AS (UPDATE resource_locator l SET compartment = m.c,
         former_compartments = CASE WHEN m.p = ANY(l.former_compartments) THEN l.former_compartments ELSE l.former_compartments || m.p END
         FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS m(t, i, c, p) WHERE l.resource_type = m.t AND l.id = m.i)`,
    );
  }
  const owned = writes.filter((w) => w.subscriptionOwner !== undefined);
  if (owned.length > 0) {
    bindings.push(JSON.stringify(owned.map((w) => ({ compartment: w.compartment, id: w.id, owner: w.subscriptionOwner }))));
    ctes.push(
      `sub_owner AS (INSERT INTO subscription_owner (compartment, id, owner)
         SELECT compartment, id, owner FROM json_to_recordset(?::json) AS x(compartment text, id text, owner json)
         ON CONFLICT (compartment, id) DO UPDATE SET owner = EXCLUDED.owner)`,
    );
  }

  const replaced = writes.filter((w) => w.previousCompartment !== undefined);
  let kindsClaims = false;
  if (replaced.length > 0) {
    // stale index rows by their full key; the compartments also as a plain array
    // parameter, so that each delete addresses only their partitions (one, for one write)
    const compartments = textArray(replaced.map((w) => w.previousCompartment!));
    bindings.push(compartments, textArray(replaced.map((w) => w.resourceType)), textArray(replaced.map((w) => w.id)));
    ctes.push(`old AS (SELECT * FROM unnest(?::text[], ?::text[], ?::text[]) AS o(compartment, resource_type, id))`);
    for (const kind of KINDS) {
      bindings.push(compartments);
      ctes.push(DELETE_INDEX_ROWS[kind]);
    }
    bindings.push(compartments);
    ctes.push(
      `del_link AS (DELETE FROM resource_link t USING old o
         WHERE t.compartment = ANY(?::text[]) AND t.compartment = o.compartment AND t.resource_type = o.resource_type AND t.resource_id = o.id)`,
    );
    // national identifiers a replaced or deleted version held and its successor no longer claims are free again
    const claiming = replaced.filter((w) => claimsUniqueIdentifiers(w.resourceType));
    if (claiming.length > 0) {
      const kept = claiming.flatMap((w) => (w.claims ?? []).map((c) => ({ t: w.resourceType, i: w.id, s: c.system, v: c.value })));
      bindings.push(textArray(kept.map((k) => k.t)), textArray(kept.map((k) => k.i)), textArray(kept.map((k) => k.s)), textArray(kept.map((k) => k.v)));
      ctes.push(
        `del_claim AS (DELETE FROM identifier_claim c USING old o
           WHERE c.resource_type = o.resource_type AND c.resource_id = o.id
             AND NOT EXISTS (SELECT 1 FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS k(t, i, s, v)
                              WHERE k.t = c.resource_type AND k.i = c.resource_id AND k.s = c.system AND k.v = c.value))`,
      );
      kindsClaims = true;
    }
  }

  // the local references of each version, once per target, to find who references what is deleted
  const links = linkRows(writes);
  if (links.length > 0) {
    bindings.push(JSON.stringify(links));
    ctes.push(
      `ins_link AS (INSERT INTO resource_link (compartment, resource_type, resource_id, target_type, target_id)
         SELECT c, t, i, tt, ti FROM json_to_recordset(?::json) AS x(c text, t text, i text, tt text, ti text))`,
    );
  }

  let kindsPresent = '';
  for (const kind of KINDS) {
    const rows = indexTableRows(writes, kind);
    // a kind without rows is left out: one statement text (and one prepared statement) per set of kinds present
    if (rows.length === 0) continue;
    kindsPresent += kind[0];
    bindings.push(JSON.stringify(rows));
    ctes.push(INSERT_INDEX_ROWS[kind]);
  }

  const name = `${replaced.length > 0 ? 'fhir_write_replace' : 'fhir_write_new'}${created.length > 0 && replaced.length > 0 ? '_mixed' : ''}${moved.length > 0 ? '_moved' : ''}_${kindsPresent}${links.length > 0 ? '_links' : ''}${kindsClaims ? '_claims' : ''}${owned.length > 0 ? '_owned' : ''}`;
  // the name says which parts the text has (one name, one text): made once
  let sql = writeTexts.get(name);
  if (sql === undefined) writeTexts.set(name, (sql = `WITH ${ctes.join(',\n')} SELECT 1`));
  await runStatement(db, sql, bindings, name);

  for (const w of writes) {
    if (w.binary) await writeBinaryContent(db, w.compartment, w.id, w.versionId, w.binary);
  }
}

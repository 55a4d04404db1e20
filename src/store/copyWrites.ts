import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { writeBinaryContent } from './binaryContent';
import { INDEX_COLUMNS, indexTableRows, KINDS, linkRows, VersionWrite } from './writeVersions';

/**
 * New resources written by `COPY … FROM STDIN` (PostgreSQL only; docs/decisions/024-bulk-load.md):
 * the rows `executeWrites` writes for a create — current row, history row, locator row,
 * outbox row, reference links, index rows — built by the same functions, streamed into
 * each table in COPY's text format. Only first versions of new resources (no replaced
 * version, no Subscription owner): the loader's case. Runs in the caller's transaction,
 * whose checks (decision 014) must have run first.
 */

const SPECIAL = /[\\\t\n\r]/;

/** One value in COPY's text format: `\N` for NULL, backslash, tab and line ends escaped. */
export function copyField(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  const s = typeof value === 'string' ? value : String(value);
  if (!SPECIAL.test(s)) return s;
  return s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** The lines of a COPY in chunks of about a megabyte (one string per chunk, not one per row). */
function* copyChunks(rows: Iterable<unknown[]>): Generator<string> {
  let chunk = '';
  for (const row of rows) {
    chunk += row.map(copyField).join('\t') + '\n';
    if (chunk.length >= 1 << 20) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

async function copyInto(client: PoolClient, table: string, columns: string[], rows: Iterable<unknown[]>): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN`));
  await pipeline(Readable.from(copyChunks(rows)), stream);
}

/** The transaction's own connection (knex hands the same one to every statement of a transaction). */
async function connectionOf(trx: Knex.Transaction): Promise<PoolClient> {
  return (await (trx as unknown as { client: { acquireConnection(): Promise<PoolClient> } }).client.acquireConnection()) as PoolClient;
}

export async function copyNewVersions(trx: Knex.Transaction, writes: VersionWrite[]): Promise<void> {
  if (writes.length === 0) return;
  for (const w of writes) {
    if (w.previousCompartment !== undefined || w.deleted || w.subscriptionOwner !== undefined) throw new Error(`${w.resourceType}/${w.id}: only new resources are copied`);
  }
  const client = await connectionOf(trx);
  const version = (w: VersionWrite) => [w.compartment, w.resourceType, w.id, w.versionId, w.lastUpdated, w.deleted];
  await copyInto(
    client,
    'resource',
    ['compartment', 'resource_type', 'id', 'version_id', 'last_updated', 'deleted', 'body'],
    writes.map((w) => [...version(w), w.bodyText]),
  );
  await copyInto(
    client,
    'resource_history',
    ['compartment', 'resource_type', 'id', 'version_id', 'last_updated', 'deleted', 'method', 'body'],
    writes.map((w) => [...version(w), w.method, w.bodyText]),
  );
  // ids stay unique through the locator's key (decision 018): a concurrent create of one of them fails the COPY
  await copyInto(client, 'resource_locator', ['resource_type', 'id', 'compartment'], writes.map((w) => [w.resourceType, w.id, w.compartment]));
  // offered to the Subscriptions as any write is (not the audit trail's own events)
  await copyInto(
    client,
    'outbox',
    ['compartment', 'resource_type', 'resource_id', 'version_id', 'deleted'],
    writes.filter((w) => w.resourceType !== 'AuditEvent').map((w) => [w.compartment, w.resourceType, w.id, w.versionId, w.deleted]),
  );
  const links = linkRows(writes);
  if (links.length > 0) {
    await copyInto(client, 'resource_link', ['compartment', 'resource_type', 'resource_id', 'target_type', 'target_id'], links.map((l) => [l.c, l.t, l.i, l.tt, l.ti]));
  }
  for (const kind of KINDS) {
    const rows = indexTableRows(writes, kind);
    if (rows.length === 0) continue;
    const columns = INDEX_COLUMNS[kind].map(([c]) => c);
    await copyInto(
      client,
      `idx_${kind}`,
      ['compartment', 'resource_type', 'resource_id', 'param', 'grp', ...columns],
      rows.map((r) => [r.c, r.t, r.i, r.p, r.g, ...columns.map((c) => r[c])]),
    );
  }
  for (const w of writes) {
    if (w.binary) await writeBinaryContent(trx, w.compartment, w.id, w.versionId, w.binary);
  }
}

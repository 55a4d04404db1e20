import { fixedCompartment } from './fixedCompartment';
import { hintedCompartment } from './locationHints';
import { locate } from './locator';
import { holdRecords } from './recordLock';
import { constraintConditions, preparedName, textArray, versionRecordCondition } from './searchSql';
import type { Session } from './session';
import { trailAsSeen } from './trailView';
import { isUnrestricted } from './visibility';

/**
 * The caller's visibility on the row aliased r, as SQL appended to a lookup by id with
 * its bindings; nothing (and a named, prepared statement) when the caller is unrestricted.
 */
function visible(session: Session, resourceType: string, bindings: unknown[]): { sql: string; bindings: unknown[]; restricted: boolean } {
  if (isUnrestricted(session.visibility)) return { sql: '', bindings, restricted: false };
  const ctx = { bindings: [...bindings], baseUrl: '', constraints: session.visibility };
  const sql = constraintConditions(ctx, 'r', resourceType);
  return { sql, bindings: ctx.bindings, restricted: true };
}

/** The current row of a resource. `body` is the stored JSON text (null when deleted). */
export interface CurrentRow {
  compartment: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  body: string | null;
}

interface RawRow {
  compartment: string;
  version_id: number;
  last_updated: Date | string;
  deleted: boolean;
  body: string | null;
}

const toRow = (r: RawRow): CurrentRow => ({
  compartment: r.compartment,
  versionId: Number(r.version_id),
  lastUpdated: r.last_updated instanceof Date ? r.last_updated : new Date(r.last_updated),
  deleted: r.deleted,
  body: r.body,
});

/**
 * The current row of `Type/id` as the caller may see it. The locator names its compartment
 * first (src/store/locator.ts): the row is then read, or locked, by its full key, in one
 * partition. A lock takes the locator row's first, so that a concurrent move cannot slip
 * between the two.
 */
export async function readCurrent(
  session: Session,
  resourceType: string,
  id: string,
  options: { forUpdate?: boolean; withBody?: boolean } = {},
): Promise<CurrentRow | undefined> {
  const withBody = options.withBody !== false;
  const lock = options.forUpdate === true;
  // a Patient or a directory resource is where its type says: no lookup (and it never moves)
  const fixed = fixedCompartment(resourceType, id);
  // else where the request's facts found it a statement ago, when that is this resource (a lock asks the locator first),
  // else where this process last saw it (src/store/locationHints.ts): a miss asks the locator
  const at = session.access.addressedAt;
  const known = fixed === undefined && !lock && at && at.resourceType === resourceType && at.id === id ? at.compartment : undefined;
  const hint = fixed === undefined && !lock && known === undefined ? hintedCompartment(resourceType, id) : undefined;
  const first = fixed ?? known ?? hint;
  // a lock of a record's resource takes the record's lock first, before the locator's (decision 017, amendment of 2026-12-06)
  const held = lock && fixed === undefined ? await holdRecordOf(session, resourceType, id) : undefined;
  let rows = first !== undefined ? await currentRows(session, first, resourceType, id, withBody, lock) : [];
  if (!rows[0]) {
    const location = await locate(session, resourceType, id, lock);
    if (!location || location.compartment === fixed) return undefined;
    // moved since the record's lock was taken (rare): that record's too, late, but before its row
    if (lock && location.compartment !== held) await holdRecords(session, [location.compartment]);
    // where it was looked for already: not there for this caller (hidden), or created since the first statement
    if (location.compartment === first) return undefined;
    rows = await currentRows(session, location.compartment, resourceType, id, withBody, lock);
    if (!rows[0] && !lock) {
      // moved between the two statements (a read takes no lock): once more where it went
      const again = await locate(session, resourceType, id);
      if (again && again.compartment !== location.compartment) rows = await currentRows(session, again.compartment, resourceType, id, withBody, lock);
    }
  }
  if (!rows[0]) return undefined;
  const row = toRow(rows[0]);
  session.touch([{ compartment: row.compartment, resourceType, id, versionId: row.versionId }]);
  [row.body] = await trailAsSeen(session, [resourceType], [row.body]);
  return row;
}

/**
 * Takes the share lock of the record `Type/id` is filed in, found where the request's facts
 * found it, else where this process last saw it, else by the locator (unlocked: the lock
 * taken next is the record's); the compartment locked, undefined for none.
 */
async function holdRecordOf(session: Session, resourceType: string, id: string): Promise<string | undefined> {
  const at = session.access.addressedAt;
  const known = at && at.resourceType === resourceType && at.id === id ? at.compartment : hintedCompartment(resourceType, id);
  const compartment = known ?? (await locate(session, resourceType, id))?.compartment;
  if (compartment) await holdRecords(session, [compartment]);
  return compartment;
}

async function currentRows(session: Session, compartment: string, resourceType: string, id: string, withBody: boolean, lock: boolean): Promise<RawRow[]> {
  const v = visible(session, resourceType, [compartment, resourceType, id]);
  const text = `SELECT r.compartment, r.version_id, r.last_updated, r.deleted, ${withBody ? 'r.body::text' : 'NULL'} AS body
       FROM resource r WHERE r.compartment = ? AND r.resource_type = ? AND r.id = ?${v.sql}${lock ? ' FOR UPDATE OF r' : ''}`;
  // a caller's visibility is all parameters: the statement is prepared by its text
  return session.query<RawRow>(text, v.bindings, v.restricted ? preparedName('fhir_read_visible', text) : `fhir_read_current${withBody ? '_body' : ''}${lock ? '_lock' : ''}`);
}

/**
 * One version of `Type/id`. Its history lives in the compartments the locator lists (a
 * resource that moved keeps its older versions in the record it left): those only are read.
 */
export async function readVersion(session: Session, resourceType: string, id: string, versionId: number): Promise<CurrentRow | undefined> {
  const location = await locate(session, resourceType, id);
  if (!location) return undefined;
  // a version is visible when the resource as it is now is (labels are indexed on the current version)
  const v = visible(session, resourceType, [textArray(location.compartments), resourceType, id, versionId, location.compartment]);
  // and the version's own record is one the caller reads: a resource that moved keeps its older versions in the record it left
  const versionRecord = v.restricted ? versionRecordCondition({ bindings: v.bindings, baseUrl: '', constraints: session.visibility }, 'h', resourceType) : '';
  const rows = await session.query<RawRow>(
    `SELECT h.compartment, h.version_id, h.last_updated, h.deleted, h.body::text AS body
       FROM resource_history h WHERE h.compartment = ANY(?::text[]) AND h.resource_type = ? AND h.id = ? AND h.version_id = ?${
         v.restricted ? ` AND EXISTS (SELECT 1 FROM resource r WHERE r.compartment = ? AND r.resource_type = h.resource_type AND r.id = h.id${v.sql})${versionRecord}` : ''
       }`,
    v.restricted ? v.bindings : v.bindings.slice(0, 4),
    v.restricted ? undefined : 'fhir_read_version',
  );
  if (!rows[0]) return undefined;
  const row = toRow(rows[0]);
  session.touch([{ compartment: row.compartment, resourceType, id, versionId: row.versionId }]);
  [row.body] = await trailAsSeen(session, [resourceType], [row.body]);
  return row;
}

/** The key material of page tokens (32 random bytes, base64url; migration 004), shared by every worker. */
export async function pageTokenSecret(session: Session): Promise<string> {
  const rows = await session.query<{ value: string }>(`SELECT value FROM server_setting WHERE name = 'page_token_secret'`);
  const secret = rows[0]?.value;
  if (!secret || secret.length < 43) throw new Error('The page token secret is missing or too short: the database migrations have not all run');
  return secret;
}

/**
 * Serialises conditional writes on the same criteria (If-None-Exist, conditional update
 * that may create) until the end of the transaction, so two concurrent requests cannot
 * both see "no match" and both create.
 */
export async function lockCriteria(session: Session, resourceType: string, criteria: string): Promise<void> {
  const canonical = [...new URLSearchParams(criteria)].map(([k, v]) => `${k}=${v}`).sort().join('&');
  await session.query(`SELECT pg_advisory_xact_lock(hashtext(?)) AS locked`, [`${resourceType}?${canonical}`]);
}

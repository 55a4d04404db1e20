import { addressesOf, byKeys, keyArrays } from './locator';
import { constraintConditions, namesBinary, ownerJoin, textArray } from './searchSql';
import type { Session } from './session';
import { isUnrestricted, UNRESTRICTED, Visibility } from './visibility';

/**
 * The statements behind docs/decisions/014-integrity.md: identifier claims, existence of
 * reference targets, referrers of a deleted resource.
 */

export interface ClaimHolder {
  system: string;
  value: string;
  compartment: string;
  resourceId: string;
}

/**
 * Claims `claims` for the resource; returns those another resource holds. `INSERT … ON
 * CONFLICT DO UPDATE` returns the row that holds the key, taking its lock: a concurrent
 * claim of the same key waits for this transaction, so two writers cannot both take it.
 * Claims the resource no longer makes are dropped by the statement that writes the
 * version (src/store/writeVersions.ts).
 */
export async function claimIdentifiers(
  session: Session,
  owner: { compartment: string; resourceType: string; id: string },
  claims: { system: string; value: string }[],
): Promise<ClaimHolder[]> {
  if (claims.length === 0) return [];
  const rows = await session.query<{ system: string; value: string; compartment: string; resource_id: string }>(
    `INSERT INTO identifier_claim (resource_type, system, value, compartment, resource_id)
       SELECT ?, system, value, ?, ? FROM json_to_recordset(?::json) AS c(system text, value text)
     ON CONFLICT (resource_type, system, value) DO UPDATE SET resource_id = identifier_claim.resource_id
     RETURNING system, value, compartment, resource_id`,
    [owner.resourceType, owner.compartment, owner.id, JSON.stringify(claims.map((c) => ({ system: c.system, value: c.value })))],
  );
  return rows.filter((r) => r.resource_id !== owner.id).map((r) => ({ system: r.system, value: r.value, compartment: r.compartment, resourceId: r.resource_id }));
}

/**
 * `claimIdentifiers` for several owners in one statement (a bulk load's batch): the holders,
 * by owner `Type/id`, of what another resource holds. The claims must be distinct (one
 * statement cannot claim the same identifier twice).
 */
export async function claimIdentifiersOfMany(
  session: Session,
  owners: { compartment: string; resourceType: string; id: string; claims: { system: string; value: string }[] }[],
): Promise<Map<string, ClaimHolder[]>> {
  const rows: [string, string, string, string, string][] = owners.flatMap((o) => o.claims.map((c): [string, string, string, string, string] => [o.resourceType, c.system, c.value, o.compartment, o.id]));
  const out = new Map<string, ClaimHolder[]>();
  if (rows.length === 0) return out;
  const column = (i: number) => rows.map((r) => r[i]);
  const held = await session.query<{ resource_type: string; system: string; value: string; compartment: string; resource_id: string }>(
    `INSERT INTO identifier_claim (resource_type, system, value, compartment, resource_id)
       SELECT t, s, v, c, i FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[]) AS x(t, s, v, c, i)
     ON CONFLICT (resource_type, system, value) DO UPDATE SET resource_id = identifier_claim.resource_id
     RETURNING resource_type, system, value, compartment, resource_id`,
    [column(0), column(1), column(2), column(3), column(4)],
  );
  const claimer = new Map(rows.map((r) => [`${r[0]}|${r[1]}|${r[2]}`, `${r[0]}/${r[4]}`]));
  for (const h of held) {
    const owner = claimer.get(`${h.resource_type}|${h.system}|${h.value}`)!;
    if (owner === `${h.resource_type}/${h.resource_id}`) continue;
    const list = out.get(owner) ?? [];
    list.push({ system: h.system, value: h.value, compartment: h.compartment, resourceId: h.resource_id });
    out.set(owner, list);
  }
  return out;
}

/**
 * Of the ids of `resourceType`, those that are current (not deleted) and visible through
 * `visibility`, with their current version.
 */
export async function currentTargets(session: Session, resourceType: string, ids: string[], visibility: Visibility): Promise<Map<string, number>> {
  const found = await currentTargetsOfTypes(session, ids.map((id) => ({ resourceType, id })), visibility, resourceType);
  return new Map([...found].map(([k, v]) => [k.slice(resourceType.length + 1), v]));
}

/**
 * `currentTargets` for targets of several types in one statement (a document names its
 * Patient, its author and its Binary: one round trip instead of one per type). The access
 * conditions are those of any type, judged per row. Keys are `Type/id`. Each target is
 * read by its full key (src/store/locator.ts): only the partitions holding them are read.
 */
export async function currentTargetsOfTypes(session: Session, targets: { resourceType: string; id: string }[], visibility: Visibility, oneType?: string): Promise<Map<string, number>> {
  if (targets.length === 0) return new Map();
  const keys = keyArrays(await addressesOf(session, targets), targets);
  if (keys[0] === '{}') return new Map();
  const ctx = { bindings: [keys[0], ...keys] as unknown[], baseUrl: '', constraints: visibility };
  const restriction = isUnrestricted(visibility) ? '' : constraintConditions(ctx, 'r', oneType);
  const rows = await session.query<{ resource_type: string; id: string; version_id: number }>(
    `SELECT r.resource_type, r.id, r.version_id FROM resource r WHERE ${byKeys('r')} AND NOT r.deleted${restriction}`,
    ctx.bindings,
  );
  return new Map(rows.map((r) => [`${r.resource_type}/${r.id}`, Number(r.version_id)]));
}

export interface Referrer {
  resourceType: string;
  id: string;
  targetType: string;
  targetId: string;
}

/**
 * Current resources (other than the targets themselves) that reference one of `targets`,
 * whatever the caller may see: at most `limit`. A Binary's referrers are also the current
 * documents of its record whose attachment names it and the messages that carry it
 * (docs/decisions/021-document-metadata-life.md, amendment): an attachment's url is not a
 * Reference, so `resource_link` does not hold it. They are looked up in the Binary's own
 * record when its compartment is given.
 */
export async function referrersOf(session: Session, targets: { resourceType: string; id: string; compartment?: string }[], limit: number): Promise<Referrer[]> {
  if (targets.length === 0) return [];
  const types = textArray(targets.map((t) => t.resourceType));
  const ids = textArray(targets.map((t) => t.id));
  const binaries = targets.filter((t) => t.resourceType === 'Binary' && t.compartment);
  const contentOf = binaries.length
    ? `UNION
      SELECT 'DocumentReference', u.resource_id, 'Binary', b.id
        FROM unnest(?::text[], ?::text[]) AS b(compartment, id)
        JOIN idx_uri u ON u.compartment = b.compartment AND u.resource_type = 'DocumentReference' AND u.param = 'location'
         AND ${namesBinary('u.value', 'b.id')}
        JOIN resource d ON ${ownerJoin('u', 'd')} AND NOT d.deleted
      UNION
      SELECT 'Communication', a.message_id, 'Binary', b.id
        FROM unnest(?::text[], ?::text[]) AS b(compartment, id)
        JOIN message_attachment a ON a.compartment = b.compartment AND a.binary_id = b.id
        JOIN resource c ON c.compartment = a.compartment AND c.resource_type = 'Communication' AND c.id = a.message_id AND NOT c.deleted`
    : '';
  const binaryKeys = [textArray(binaries.map((b) => b.compartment!)), textArray(binaries.map((b) => b.id))];
  const rows = await session.query<{ resource_type: string; resource_id: string; target_type: string; target_id: string }>(
    `SELECT * FROM (
      SELECT l.resource_type, l.resource_id, l.target_type, l.target_id
       FROM unnest(?::text[], ?::text[]) AS t(resource_type, id)
       JOIN resource_link l ON l.target_type = t.resource_type AND l.target_id = t.id
       JOIN resource r ON r.compartment = l.compartment AND r.resource_type = l.resource_type AND r.id = l.resource_id AND NOT r.deleted
      ${contentOf}) AS x(resource_type, resource_id, target_type, target_id)
      WHERE (x.resource_type, x.resource_id) NOT IN (SELECT * FROM unnest(?::text[], ?::text[]))
      ORDER BY x.resource_type, x.resource_id LIMIT ?`,
    // referrers may be in any record: this one reads every partition's target index (a deletion, not a read path)
    [types, ids, ...(binaries.length ? [...binaryKeys, ...binaryKeys] : []), types, ids, limit],
  );
  return rows.map((r) => ({ resourceType: r.resource_type, id: r.resource_id, targetType: r.target_type, targetId: r.target_id }));
}

/** Whether the caller may read `resourceType/id` as it is now (to name it in a refusal or not). */
export async function readable(session: Session, resourceType: string, id: string): Promise<boolean> {
  return (await currentTargets(session, resourceType, [id], session.visibility)).has(id);
}

export { UNRESTRICTED };

import type { Session } from './session';
import { textArray } from './searchSql';
import { fixedCompartment } from './fixedCompartment';
import { forgetCompartment, hintedCompartment, rememberCompartment } from './locationHints';

/**
 * Where a resource lives (migrations/011_resource_locator.ts, docs/decisions/018-partitioning.md):
 * a statement by id first asks the locator for the compartment, then addresses that one
 * partition (one Citus shard) by the full key, instead of probing every one.
 */
export interface Location {
  /** The compartment holding the current row ('' outside any record). */
  compartment: string;
  /** Every compartment holding versions of it: the current one first, then those it moved out of. */
  compartments: string[];
}

/**
 * The compartment of `Type/id`, undefined when no such id was ever written. `lock` takes
 * the locator row's lock until the end of the transaction: a concurrent move of the
 * resource waits, so the compartment found stays the one the row is locked in.
 */
export async function locate(session: Session, resourceType: string, id: string, lock = false): Promise<Location | undefined> {
  const rows = await session.query<{ compartment: string; former: string[] | string }>(
    `SELECT compartment, former_compartments AS former FROM resource_locator WHERE resource_type = ? AND id = ?${lock ? ' FOR UPDATE' : ''}`,
    [resourceType, id],
    lock ? 'locate_lock' : 'locate',
  );
  if (!rows[0]) {
    forgetCompartment(resourceType, id);
    return undefined;
  }
  rememberCompartment(resourceType, id, rows[0].compartment);
  const former = parseTextArray(rows[0].former).filter((c) => c !== rows[0].compartment);
  return { compartment: rows[0].compartment, compartments: [rows[0].compartment, ...former] };
}

/** The current compartment of each of these `Type/id` that exists (keys `Type/id`), in one statement. */
export async function locateAll(session: Session, refs: { resourceType: string; id: string }[]): Promise<Map<string, string>> {
  if (refs.length === 0) return new Map();
  const rows = await session.query<{ resource_type: string; id: string; compartment: string }>(
    `SELECT l.resource_type, l.id, l.compartment FROM resource_locator l
      WHERE (l.resource_type, l.id) IN (SELECT * FROM unnest(?::text[], ?::text[]))`,
    [textArray(refs.map((r) => r.resourceType)), textArray(refs.map((r) => r.id))],
    'locate_all',
  );
  return new Map(rows.map((r) => [`${r.resource_type}/${r.id}`, r.compartment]));
}

/** node-postgres returns text[] as an array; PGlite through knex may hand back the literal. */
function parseTextArray(value: string[] | string | null): string[] {
  if (value === null) return [];
  if (Array.isArray(value)) return value;
  const inner = value.replace(/^\{|\}$/g, '');
  if (inner === '') return [];
  return inner.split(',').map((s) => s.replace(/^"|"$/g, '').replace(/\\(.)/g, '$1'));
}

/**
 * The rows of `refs` as (compartment, type, id) arrays for a statement by full key:
 * `compartment = ANY(c)` lets the planner (and Citus) address only those partitions, and
 * the unnest of the three arrays matches each key exactly. Unknown ids are left out.
 */
export function keyArrays(located: Map<string, string>, refs: { resourceType: string; id: string }[]): [string, string, string] {
  const known = refs.filter((r) => located.has(`${r.resourceType}/${r.id}`));
  return [textArray(known.map((r) => located.get(`${r.resourceType}/${r.id}`)!)), textArray(known.map((r) => r.resourceType)), textArray(known.map((r) => r.id))];
}

/** SQL matching the row aliased `r` against three array parameters from `keyArrays` (bindings: compartments, types, ids, then compartments again, types, ids). */
export function byKeys(r: string, idColumn = 'id'): string {
  return `${r}.compartment = ANY(?::text[]) AND (${r}.compartment, ${r}.resource_type, ${r}.${idColumn}) IN (SELECT * FROM unnest(?::text[], ?::text[], ?::text[]))`;
}

/**
 * The compartment to address `Type/id` in: the one its type decides (a Patient, a
 * directory resource: no lookup), else the locator's; undefined when unknown. The caller
 * reads by the full key, which finds nothing for an id that does not exist.
 */
export async function addressOf(session: Session, resourceType: string, id: string): Promise<string | undefined> {
  const fixed = fixedCompartment(resourceType, id);
  if (fixed !== undefined) return fixed;
  return (await locate(session, resourceType, id))?.compartment;
}

/**
 * Where to look for `Type/id` first without a statement: its type's compartment, else
 * where this process last saw it (src/store/locationHints.ts). `hinted` says that the
 * answer is only a hint: a caller that finds no row there must ask `addressOf`.
 */
export function firstAddressOf(resourceType: string, id: string): { compartment: string; hinted: boolean } | undefined {
  const fixed = fixedCompartment(resourceType, id);
  if (fixed !== undefined) return { compartment: fixed, hinted: false };
  const hint = hintedCompartment(resourceType, id);
  return hint === undefined ? undefined : { compartment: hint, hinted: true };
}

/** `addressOf` for many: the type's compartment where it decides, the locator's (one statement) for the others. Keys `Type/id`. */
export async function addressesOf(session: Session, refs: { resourceType: string; id: string }[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const unknown: { resourceType: string; id: string }[] = [];
  for (const r of refs) {
    const fixed = fixedCompartment(r.resourceType, r.id);
    if (fixed !== undefined) out.set(`${r.resourceType}/${r.id}`, fixed);
    else unknown.push(r);
  }
  for (const [k, c] of await locateAll(session, unknown)) out.set(k, c);
  return out;
}

import { consentFact, RecordFacts, relative } from '../access/policy/recordFacts';
import { recordStateOf } from '../access/policy/recordState';
import { identifierClaims } from '../integrity/uniqueIdentifiers';
import { fixedCompartment } from './fixedCompartment';
import { addressOf, firstAddressOf, locate } from './locator';
import { textArray } from './searchSql';
import { HELD_RECORD_ROW } from './recordLock';
import type { Session } from './session';

/**
 * The facts access control decides on, read in the request's own transaction: the
 * caller's own resources, and the state and Consents of the records involved. These
 * statements act for no caller (they establish who the caller is and what they may do),
 * so they do not apply a visibility; nothing they read is sent to a client.
 */

export interface StoredResource {
  resourceType: string;
  id: string;
  deleted: boolean;
  resource: Record<string, any> | null;
}

/** One current resource by type and id, whoever may see it. */
export async function peekResource(session: Session, resourceType: string, id: string): Promise<StoredResource | undefined> {
  const compartment = await addressOf(session, resourceType, id);
  if (compartment === undefined) return undefined;
  const rows = await session.query<{ deleted: boolean; body: string | null }>(
    'SELECT deleted, body::text AS body FROM resource WHERE compartment = ? AND resource_type = ? AND id = ?',
    [compartment, resourceType, id],
    'access_peek_resource',
  );
  if (!rows[0]) return undefined;
  return { resourceType, id, deleted: rows[0].deleted, resource: rows[0].body ? JSON.parse(rows[0].body) : null };
}

/** The patient compartment of a resource ('' outside any record), undefined when unknown. */
export async function compartmentOfResource(session: Session, resourceType: string, id: string): Promise<string | undefined> {
  const fixed = fixedCompartment(resourceType, id);
  if (fixed === undefined) return (await locate(session, resourceType, id))?.compartment;
  const rows = await session.query<{ compartment: string }>('SELECT compartment FROM resource WHERE compartment = ? AND resource_type = ? AND id = ?', [fixed, resourceType, id], 'access_compartment');
  return rows[0]?.compartment;
}

/**
 * The record's notification-preference Basic (decision 009), read with the facts: the
 * audit writer needs it for every notice, and this statement runs anyway. A literal (no
 * binding), so that the statements keep their one text each.
 */
const PREFERENCE_ROW = `(r.resource_type = 'Basic' AND EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN json_typeof(r.body -> 'code' -> 'coding') = 'array' THEN r.body -> 'code' -> 'coding' ELSE '[]'::json END) pc
      WHERE pc ->> 'system' = 'https://fhir.dmp.esante.example/CodeSystem/dmp-notification' AND pc ->> 'code' = 'notification-preference'))`;

/**
 * The rows of each record's facts: its Patient, Consents, RelatedPersons and notification preference.
 * Index ranges of the primary key (compartment, resource_type) per record, whatever the
 * number of records: `compartment = ANY(…)` over hundreds of records was planned as a
 * sequential scan of the whole table. The four types as a plain list, so that the range
 * holds the type too: on the compartment alone every row of the record was read and
 * filtered, its documents and its ever-growing access trail included (9 ms for twelve
 * records of 330 rows; 0.7 ms so).
 */
const FACT_ROWS = `r.resource_type IN ('Basic', 'Consent', 'Patient', 'RelatedPerson') AND NOT r.deleted AND (r.resource_type IN ('Consent', 'RelatedPerson') OR (r.resource_type = 'Patient' AND r.id = r.compartment) OR ${PREFERENCE_ROW})`;

/** What a search by identifier can return (decision 008, amendment of 2026-12-07). */
export interface IdentifierHolders {
  /** The type whose `identifier` holds one of the values: the searched type, or Patient for a search by the patient's identifier. */
  resourceType: string;
  values: { system: string; code: string }[];
  /** The searched type: its resources in the records of the holders are what the search can return. */
  returned: string;
}

/**
 * The facts of the records whose Consents name this practitioner as a provision actor
 * (declared consent, treating physician, block), and of `alsoIds`, in one statement.
 * `holding`: of the records named by the Consents, only those a search by identifier can
 * read: the records holding a resource with one of the values (its index row, written in
 * the resource's own compartment), and the records of every resource that the searched
 * type's resources there reference (the references withheld from them are decided
 * against the records open to the caller).
 */
export async function factsOfRecordsNaming(session: Session, practitionerId: string, alsoIds: string[], holding?: IdentifierHolders): Promise<Map<string, RecordFacts>> {
  const wanted = holding
    ? `holders AS (SELECT DISTINCT c.compartment FROM idx_token c
           WHERE c.resource_type = ? AND c.param = 'identifier' AND (c.code, c.system) IN (SELECT * FROM unnest(?::text[], ?::text[]))),
       linked AS (SELECT l.target_type, l.target_id FROM resource_link l WHERE l.compartment IN (SELECT compartment FROM holders) AND l.resource_type = ?),
       wanted AS (SELECT compartment FROM holders
         UNION SELECT k.target_id FROM linked k WHERE k.target_type = 'Patient'
         UNION SELECT n.compartment FROM linked k JOIN resource_locator n ON n.resource_type = k.target_type AND n.id = k.target_id),
       `
    : '';
  const rows = await session.query<FactRow & { record: string }>(
    `WITH ${wanted}records AS (
       SELECT x.compartment FROM idx_reference x
        WHERE x.resource_type = 'Consent' AND x.param = 'actor' AND x.target_type = 'Practitioner' AND x.target_id = ? AND x.compartment <> ''${holding ? ' AND x.compartment IN (SELECT compartment FROM wanted)' : ''}
       UNION SELECT unnest(?::text[]))
     SELECT n.compartment AS record, r.resource_type, r.id, r.compartment, r.body::text AS body
       FROM records n LEFT JOIN resource r ON r.compartment = n.compartment AND ${FACT_ROWS}`,
    [
      ...(holding ? [holding.resourceType, textArray(holding.values.map((v) => v.code)), textArray(holding.values.map((v) => v.system)), holding.returned] : []),
      practitionerId,
      textArray(alsoIds),
    ],
    holding ? 'access_facts_of_records_naming_holding' : 'access_facts_of_records_naming',
  );
  return foldFacts([...new Set([...rows.map((r) => r.record), ...alsoIds])], rows.filter((r) => r.resource_type !== null));
}

/** State, general practitioners and Consents of each record (a record that does not exist is closed). */
export async function recordFacts(session: Session, ids: string[]): Promise<Map<string, RecordFacts>> {
  // each record once: the join would return its rows once per occurrence
  const patientIds = [...new Set(ids)];
  if (patientIds.length === 0) return new Map();
  // One array parameter, not one per record: a fixed text is parsed and planned once per connection.
  const rows = await session.query<FactRow>(
    `SELECT r.resource_type, r.id, r.compartment, r.body::text AS body
       FROM unnest(?::text[]) AS n(compartment) JOIN resource r ON r.compartment = n.compartment AND ${FACT_ROWS}
      WHERE r.compartment = ANY(?::text[])`,
    // the records also as a plain array condition: only their partitions (shards) are read
    [textArray(patientIds), textArray(patientIds)],
    'access_record_facts',
  );
  return foldFacts(patientIds, rows);
}

type FactRow = { resource_type: string; id: string; compartment: string; body: string };

/**
 * `recordFacts` for a write: the records' Patient rows locked `FOR KEY SHARE` until the end
 * of the transaction (docs/decisions/017-record-lifecycle.md, amendment of 2026-12-06), in
 * the same statement. A lifecycle operation (`FOR UPDATE` on the same row) in flight is
 * waited for; one that comes later waits for this write's commit. The Patient (its state)
 * is read from the locked row itself: after a wait READ COMMITTED returns the row as the
 * operation committed it (none when it deleted the record), while a plain join would still
 * read the statement's older snapshot. Deposits into one record do not wait for each other
 * (two share locks). The other facts (Consents, representatives) are read as usual.
 */
export async function heldRecordFacts(session: Session, ids: string[]): Promise<Map<string, RecordFacts>> {
  const patientIds = [...new Set(ids)];
  if (patientIds.length === 0) return new Map();
  const rows = await session.query<FactRow & { deleted: boolean }>(
    `WITH held AS (SELECT p.compartment, p.deleted, p.body FROM resource p
        WHERE p.compartment = ANY(?::text[]) AND ${HELD_RECORD_ROW})
     SELECT 'Patient' AS resource_type, h.compartment AS id, h.compartment, h.body::text AS body, h.deleted FROM held h
     UNION ALL
     SELECT r.resource_type, r.id, r.compartment, r.body::text, r.deleted FROM held h JOIN resource r ON r.compartment = h.compartment AND r.resource_type <> 'Patient' AND ${FACT_ROWS}
      WHERE r.compartment = ANY(?::text[])`,
    // the records also as a plain array condition on the join: only their partitions (shards) are read
    [textArray(patientIds), textArray(patientIds)],
    'access_record_facts_held',
  );
  // a Patient deleted (logically) is locked all the same, and holds no record
  return foldFacts(patientIds, rows.filter((r) => !r.deleted));
}



/**
 * The facts of each record from its Patient, Consent and RelatedPerson rows. `parsed`: a
 * body already parsed, by its text (the patient's own Patient, read as the actor in the
 * same statement); only read here, never kept.
 */
function foldFacts(patientIds: string[], rows: FactRow[], parsed?: { body: string; resource: Record<string, any> }): Map<string, RecordFacts> {
  const out = new Map<string, RecordFacts>();
  // a record whose Patient is not stored is not known (an id nobody holds, a record deleted): closed to writes, 404 to reads
  for (const id of patientIds) out.set(id, { patientId: id, state: 'closed', known: false, generalPractitioners: [], representatives: [], consents: [] });
  // in one order whatever the plan (a partitioned table returns its parts' rows in turn): the same facts read either way are equal
  const ordered = [...rows].sort((a, b) => (a.resource_type < b.resource_type ? -1 : a.resource_type > b.resource_type ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const row of ordered) {
    const facts = out.get(row.compartment);
    if (!facts) continue;
    const resource = row.resource_type === 'Patient' && parsed && row.body === parsed.body ? parsed.resource : JSON.parse(row.body);
    if (row.resource_type === 'Patient') {
      facts.state = recordStateOf(resource).state;
      facts.known = true;
      if (typeof resource.birthDate === 'string') facts.birthDate = resource.birthDate;
      facts.generalPractitioners = (resource.generalPractitioner ?? []).map((g: any) => relative(String(g?.reference ?? '')));
    } else if (row.resource_type === 'Basic') {
      // the latest one counts
      const when = (b: Record<string, any> | undefined) => String(b?.meta?.lastUpdated ?? '');
      if (!facts.notificationPreference || when(resource) > when(facts.notificationPreference)) facts.notificationPreference = resource;
    } else if (row.resource_type === 'RelatedPerson') {
      if (resource.active !== false) {
        facts.representatives!.push(`RelatedPerson/${row.id}`);
        if (typeof resource.period?.start === 'string') (facts.representativeSince ??= {})[`RelatedPerson/${row.id}`] = resource.period.start;
      }
    } else facts.consents.push(consentFact(resource));
  }
  return out;
}

/**
 * The record of one resource and that record's facts, in one statement: what a request
 * addressing one resource needs. `compartment` is undefined when the resource is unknown,
 * '' when it belongs to no record (no facts then).
 */
export async function factsOfResource(session: Session, resourceType: string, id: string): Promise<{ compartment: string | undefined; facts: Map<string, RecordFacts> }> {
  const rows = await addressed(session, resourceType, id, (where) =>
    session.query<FactRow & { target: string }>(
      `WITH target AS (SELECT compartment FROM resource WHERE compartment = ? AND resource_type = ? AND id = ?)
     SELECT t.compartment AS target, r.resource_type, r.id, r.compartment, r.body::text AS body
       FROM target t LEFT JOIN resource r ON r.compartment = t.compartment AND t.compartment <> '' AND ${FACT_ROWS}`,
      [where ?? null, resourceType, id],
      'access_facts_of_resource',
    ),
  );
  const compartment = rows[0]?.target;
  if (!compartment) return { compartment, facts: new Map() };
  return { compartment, facts: foldFacts([compartment], rows.filter((r) => r.resource_type !== null)) };
}

/**
 * Runs a statement that finds `Type/id` by its full key (its rows, or those `found` picks,
 * are there only when the resource is) in the compartment to look in first: its type's,
 * or where this process last saw it (src/store/locationHints.ts), without a locator
 * look-up. A hint that finds nothing is not believed: the locator is asked, and the
 * statement runs again where it says, when that is elsewhere.
 */
async function addressed<T>(session: Session, resourceType: string, id: string, run: (where: string | undefined) => Promise<T[]>, found: (row: T) => boolean = () => true): Promise<T[]> {
  const first = firstAddressOf(resourceType, id);
  if (!first) return run(await addressOf(session, resourceType, id));
  const rows = await run(first.compartment);
  if (!first.hinted || rows.some(found)) return rows;
  const where = await addressOf(session, resourceType, id);
  return where === undefined || where === first.compartment ? rows : run(where);
}

/**
 * The actor's own resource and, for a Practitioner, their current PractitionerRoles, in
 * one statement (every request of a practitioner needs both).
 */
export async function actorResources(session: Session, resourceType: string, id: string): Promise<{ actor: StoredResource | undefined; roles: Record<string, any>[] }> {
  const rows = await session.query<ActorRow>(ACTOR_PARTS, await actorBindings(session, resourceType, id), 'access_actor_resources');
  return actorOf(rows, resourceType, id);
}

type ActorRow = { part: string; resource_type: string | null; id: string | null; compartment: string | null; deleted: boolean | null; body: string | null; target: string | null };

/**
 * The actor's own row ('actor') and, for a Practitioner, their current PractitionerRoles
 * ('role'), by full key: the roles are directory resources (compartment ''); binds the
 * bindings of `actorBindings`. The roles are found from the practitioner's reference
 * (fenced: the prepared plan, which cannot see the practitioner, otherwise walked every
 * PractitionerRole of the directory and, for each, every role's references).
 */
const ACTOR_PARTS = `SELECT 'actor' AS part, r.resource_type, r.id, r.compartment, r.deleted, r.body::text AS body, NULL::text AS target FROM resource r WHERE r.compartment = ? AND r.resource_type = ? AND r.id = ?
     UNION ALL
     SELECT 'role', r.resource_type, r.id, r.compartment, r.deleted, r.body::text, NULL
       FROM (SELECT x.resource_id FROM idx_reference x
              WHERE x.compartment = '' AND x.resource_type = 'PractitionerRole' AND x.param = 'practitioner' AND x.target_type = 'Practitioner' AND x.target_id = ? OFFSET 0) x
       JOIN resource r ON r.compartment = '' AND r.resource_type = 'PractitionerRole' AND r.id = x.resource_id
      WHERE ? = 'Practitioner' AND NOT r.deleted`;

/** The bindings of `ACTOR_PARTS`: the actor's compartment (its type's, or the locator's) first. */
async function actorBindings(session: Session, resourceType: string, id: string): Promise<unknown[]> {
  return [(await addressOf(session, resourceType, id)) ?? null, resourceType, id, id, resourceType];
}

/** The actor and their roles from the rows of `ACTOR_PARTS`. */
function actorOf(rows: ActorRow[], resourceType: string, id: string): { actor: StoredResource | undefined; roles: Record<string, any>[] } {
  const own = rows.find((r) => r.part === 'actor');
  return {
    actor: own ? { resourceType, id, deleted: Boolean(own.deleted), resource: own.body ? JSON.parse(own.body) : null } : undefined,
    roles: rows.filter((r) => r.part === 'role' && resourceType === 'Practitioner').map((r) => JSON.parse(r.body!)),
  };
}

/** What a request needs of its records before the policy decides, when it can say so from its URL alone. */
export interface FactsWanted {
  /** The resource a request addresses: its record and that record's facts. */
  addressed?: { resourceType: string; id: string };
  /** Records a request names: their facts. */
  records?: string[];
}

/** The facts read with the actor, for `authorize` (which reads them itself when absent). */
export interface FactsRead {
  addressed?: { resourceType: string; id: string; compartment: string | undefined; facts: Map<string, RecordFacts> };
  records?: Map<string, RecordFacts>;
}

/**
 * `actorResources` and the facts a request names in one statement: the actor's resource,
 * a practitioner's roles, then the addressed resource's record and its facts, or the
 * facts of the named records. One round trip instead of two on every request that
 * addresses a record; the facts are read as fresh as when read apart (no cache).
 */
export async function actorResourcesWithFacts(
  session: Session,
  resourceType: string,
  id: string,
  wanted: FactsWanted,
): Promise<{ actor: StoredResource | undefined; roles: Record<string, any>[]; facts: FactsRead }> {
  const actor = await actorBindings(session, resourceType, id);
  let rows: ActorRow[];
  if (wanted.addressed) {
    const target = wanted.addressed;
    rows = await addressed(
      session,
      target.resourceType,
      target.id,
      (where) =>
        session.query<ActorRow>(
          `WITH target AS (SELECT compartment FROM resource WHERE compartment = ? AND resource_type = ? AND id = ?)
       ${ACTOR_PARTS}
       UNION ALL
       SELECT 'facts', r.resource_type, r.id, r.compartment, r.deleted, r.body::text, t.compartment
         FROM target t LEFT JOIN resource r ON r.compartment = t.compartment AND t.compartment <> '' AND ${FACT_ROWS}`,
          [where ?? null, target.resourceType, target.id, ...actor],
          'access_actor_addressed',
        ),
      (r) => r.part === 'facts',
    );
  } else {
    rows = await session.query<ActorRow>(
      `${ACTOR_PARTS}
       UNION ALL
       SELECT 'facts', r.resource_type, r.id, r.compartment, r.deleted, r.body::text, NULL
         FROM unnest(?::text[]) AS n(compartment) JOIN resource r ON r.compartment = n.compartment AND ${FACT_ROWS}
        WHERE r.compartment = ANY(?::text[])`,
      [...actor, textArray([...new Set(wanted.records ?? [])]), textArray([...new Set(wanted.records ?? [])])],
      'access_actor_records',
    );
  }
  const factRows = rows.filter((r) => r.part === 'facts');
  const withResource = factRows.filter((r): r is ActorRow & FactRow => r.resource_type !== null);
  const found = actorOf(rows, resourceType, id);
  // a patient in their own record: their Patient is among the facts too, parsed once
  const own = resourceType === 'Patient' && found.actor?.resource ? { body: rows.find((r) => r.part === 'actor')!.body!, resource: found.actor.resource } : undefined;
  let facts: FactsRead;
  if (wanted.addressed) {
    const compartment = factRows[0]?.target ?? undefined;
    facts = { addressed: { ...wanted.addressed, compartment, facts: compartment ? foldFacts([compartment], withResource, own) : new Map() } };
  } else facts = { records: foldFacts(wanted.records ?? [], withResource, own) };
  return { ...found, facts };
}

/**
 * The current Practitioners carrying this national identifier (idNatPS, e.g. `8` + RPPS),
 * found through the search index: a client certificate names the professional by it.
 */
export async function practitionersByIdNatPs(session: Session, system: string, idNat: string): Promise<Record<string, any>[]> {
  const rows = await session.query<{ body: string }>(
    `SELECT r.body::text AS body FROM resource r
      WHERE r.resource_type = 'Practitioner' AND NOT r.deleted
        AND (r.compartment, r.resource_type, r.id) IN (SELECT x.compartment, x.resource_type, x.resource_id FROM idx_token x
              WHERE x.resource_type = 'Practitioner' AND x.param = 'identifier' AND x.system = ? AND x.code = ?)`,
    [system, idNat],
    'access_practitioners_by_idnat',
  );
  return rows.map((r) => JSON.parse(r.body));
}

/**
 * The ids of the current Patients whose INS is `system|value` (their claim, decision 014:
 * not an `old` identifier, not the NSS slice a child carries for a parent's number), found
 * through the search index, read as the policy's facts are (docs/decisions/033-record-lookup-by-ins.md).
 */
export async function patientsByNationalIdentifier(session: Session, system: string, value: string): Promise<string[]> {
  const rows = await session.query<{ id: string; body: string }>(
    `SELECT r.id, r.body::text AS body FROM resource r
      WHERE r.resource_type = 'Patient' AND NOT r.deleted
        AND (r.compartment, r.resource_type, r.id) IN (SELECT x.compartment, x.resource_type, x.resource_id FROM idx_token x
              WHERE x.resource_type = 'Patient' AND x.param = 'identifier' AND x.system = ? AND x.code = ?)`,
    [system, value],
    'access_patients_by_ins',
  );
  return rows.filter((r) => identifierClaims(JSON.parse(r.body)).some((c) => c.system === system && c.value === value)).map((r) => r.id);
}

import type { Coding } from '../access/actor';

/**
 * One AuditEvent in the shape of IHE BALP (Basic Audit Log Patterns), built from facts the
 * pipeline hands in: pure, so every shape is table-tested (docs/decisions/009-audit.md).
 */

export const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
export const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';
export const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
export const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
export const DICOM = 'http://dicom.nema.org/resources/ontology/DCM';
export const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
export const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
export const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
export const AUDIT_PROFILE = 'https://fhir.dmp.esante.example/StructureDefinition/dmp-audit-event';

/** BALP outcomes: 0 success, 4 refused by the policy (minor failure); 8 and 12 are server failures. */
export type AuditOutcome = 0 | 4 | 8 | 12;

/** Who acted, as the pipeline knows them. */
export interface AuditAgent {
  /** `Practitioner/x`, `Patient/x`, `RelatedPerson/x`, `Device/x`; absent for an administrator or the test client. */
  reference?: string;
  display?: string;
  /** The token's issuer and subject: who acted when no resource names them (and alongside one). */
  identifier?: { system: string; value: string };
  /** The profession of each role the practitioner acts in. */
  professions: Coding[];
  /** The client's network address. */
  network?: string;
  /** The X-Break-Glass reason, when the access broke the glass. */
  breakGlass?: string;
}

/** The interaction audited, by the route's name (`read`, `search-type`, `conditional-update`, `operation` …). */
export interface AuditedInteraction {
  interaction: string;
  /** For an operation: its name without `$`. */
  operation?: string;
}

/** What the event is about: one patient (or none), the resources concerned, a search's query. */
export interface AuditEntities {
  patient?: string;
  /** `Type/id` or `Type/id/_history/v`. */
  resources: string[];
  /** The query string of a search (without `?`). */
  query?: string;
  /** The resource type a search or history was on, for the query entity's display. */
  queriedType?: string;
  /** What the request addressed, named when nothing else is (a refusal before any row was read). */
  target?: string;
}

export interface AuditRequest {
  /** ISO instant. */
  recorded: string;
  /** This server's FHIR base URL: the source and the destination agent. */
  serverUrl: string;
  outcomeDesc?: string;
}

/** The restful-interaction code (R4) of a route's interaction. */
export function subtypeCode(interaction: string): string {
  switch (interaction) {
    case 'conditional-update':
      return 'update';
    case 'conditional-patch':
      return 'patch';
    case 'conditional-delete':
      return 'delete';
    case 'search-compartment':
      return 'search-type';
    default:
      return interaction;
  }
}

/** C create, R read, U update, D delete, E execute (searches and operations, BALP's Query pattern). */
export function actionOf(interaction: string): 'C' | 'R' | 'U' | 'D' | 'E' {
  switch (subtypeCode(interaction)) {
    case 'create':
      return 'C';
    case 'read':
    case 'vread':
    case 'history-instance':
    case 'history-type':
    case 'history-system':
      return 'R';
    case 'update':
    case 'patch':
      return 'U';
    case 'delete':
      return 'D';
    default:
      return 'E';
  }
}

const OUTCOME_TEXT: Record<AuditOutcome, string> = { 0: 'Success', 4: 'Refused by the access policy', 8: 'Serious failure', 12: 'Major failure' };

const coding = (system: string, code: string, display?: string) => ({ system, code, ...(display ? { display } : {}) });

function userAgent(agent: AuditAgent): Record<string, unknown> {
  const who: Record<string, unknown> = {};
  if (agent.reference) who.reference = agent.reference;
  if (agent.identifier) who.identifier = agent.identifier;
  if (agent.display) who.display = agent.display;
  return {
    type: { coding: [coding(PARTICIPATION_TYPE, 'IRCP', 'information recipient')] },
    ...(agent.professions.length ? { role: agent.professions.map((p) => ({ coding: [p.system ? coding(p.system, p.code) : { code: p.code }] })) } : {}),
    who,
    requestor: true,
    ...(agent.network ? { network: { address: agent.network, type: '2' } } : {}),
    ...(agent.breakGlass !== undefined ? { purposeOfUse: [purposeOfUse(agent.breakGlass)] } : {}),
  };
}

/** ETREAT with the break-glass reason; an empty reason (refused by the policy, still audited) has no text: FHIR strings are never empty. */
function purposeOfUse(reason: string): Record<string, unknown> {
  return { coding: [coding(ACT_REASON, 'ETREAT', 'Emergency Treatment')], ...(reason ? { text: reason } : {}) };
}

/** One AuditEvent (BALP: rest type, interaction subtype, user/client/server agents, patient/resource/query entities). */
export function auditEvent(agent: AuditAgent, what: AuditedInteraction, outcome: AuditOutcome, entities: AuditEntities, request: AuditRequest): Record<string, unknown> {
  const subtype = subtypeCode(what.interaction);
  const entity: Record<string, unknown>[] = [];
  if (entities.patient) {
    entity.push({ what: { reference: `Patient/${entities.patient}` }, type: coding(ENTITY_TYPE, '1', 'Person'), role: coding(OBJECT_ROLE, '1', 'Patient') });
  }
  for (const reference of entities.resources) {
    // the patient is named once, as the patient
    if (entities.patient && reference.replace(/\/_history\/.*$/, '') === `Patient/${entities.patient}`) continue;
    entity.push({ what: { reference }, type: coding(ENTITY_TYPE, '2', 'System Object'), role: coding(OBJECT_ROLE, '4', 'Domain Resource') });
  }
  if (entities.query !== undefined) {
    entity.push({
      what: { display: `${entities.queriedType ?? ''}?${entities.query}` },
      type: coding(ENTITY_TYPE, '2', 'System Object'),
      role: coding(OBJECT_ROLE, '24', 'Query'),
      query: Buffer.from(entities.query, 'utf8').toString('base64'),
    });
  }
  if (entity.length === 0 && entities.target) entity.push({ what: { display: entities.target }, type: coding(ENTITY_TYPE, '2', 'System Object') });
  const event: Record<string, unknown> = {
    resourceType: 'AuditEvent',
    meta: { profile: [AUDIT_PROFILE] },
    type: coding(AUDIT_EVENT_TYPE, 'rest', 'Restful Operation'),
    subtype: [coding(RESTFUL_INTERACTION, subtype, what.operation ? `$${what.operation}` : subtype)],
    action: actionOf(what.interaction),
    recorded: request.recorded,
    outcome: String(outcome),
    outcomeDesc: request.outcomeDesc ?? OUTCOME_TEXT[outcome],
    ...(agent.breakGlass !== undefined ? { purposeOfEvent: [purposeOfUse(agent.breakGlass)] } : {}),
    agent: [
      userAgent(agent),
      {
        type: { coding: [coding(DICOM, '110153', 'Source Role ID')] },
        who: { display: agent.network ? `client at ${agent.network}` : 'client' },
        requestor: false,
        ...(agent.network ? { network: { address: agent.network, type: '2' } } : {}),
      },
      {
        type: { coding: [coding(DICOM, '110152', 'Destination Role ID')] },
        who: { display: request.serverUrl },
        requestor: false,
        network: { address: request.serverUrl, type: '5' },
      },
    ],
    source: { observer: { display: request.serverUrl }, type: [coding(SOURCE_TYPE, '4', 'Application Server')] },
  };
  if (entity.length) event.entity = entity;
  return event;
}

/** The resources of one patient, grouped: what one event per patient is built from. */
export function byPatient(rows: { compartment: string; reference: string }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const row of rows) {
    // rows outside any record (the directory, conformance resources) are not patient data
    if (!row.compartment) continue;
    const list = out.get(row.compartment) ?? [];
    if (!list.includes(row.reference)) list.push(row.reference);
    out.set(row.compartment, list);
  }
  return out;
}

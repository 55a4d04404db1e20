import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import type { Session } from '../store/session';
import { activate, close, oppose, reopen } from '../dmp/recordLifecycle';
import { everything } from './everything';
import { exportKickOff } from './bulkExport';
import { maskAllDocuments, metaAdd, metaDelete, metaOperation, unmaskAllDocuments } from './meta';
import { codeSystemValidateCode, expand, valueSetValidateCode } from './terminology';
import { validateOperation } from './validate';
import { closeConversation, deleteCopy, fileToRecord } from '../dmp/messaging';

export interface OperationEntry {
  name: string;
  /** Canonical URL of the OperationDefinition. */
  definition: string;
  /** Where it may be invoked: system ([base]/$op), type ([type]/$op), instance ([type]/[id]/$op). */
  system: boolean;
  /** Types it may be invoked on; '*' for every served type. */
  types: string[] | '*';
  /** Invocable on the type itself ([type]/$op). */
  type: boolean;
  instance: boolean;
  /** What the CapabilityStatement says of this server's support, where it is narrower than the definition. */
  documentation?: string;
  /** The operation only reads. */
  affectsState: boolean;
  /**
   * Without an id it reads nothing stored (the input is in the request): it is invocable on
   * every R4 resource type, also the ones this server does not store, and needs no resource
   * scope (docs/decisions/008-access-model.md, "Validation of a posted resource").
   */
  storageFree?: boolean;
  handler(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse>;
}

/** What differs from the R4 definitions of $meta-add and $meta-delete (src/operations/meta.ts says why). */
const META_CHANGE =
  'Current version only ([type]/[id]/$op, not on a historical version). The change is a new version (method PATCH in history), validated and authorised as an update: R4 changes meta without a new version, but access here depends on the security labels, so each change stays in history. A change that changes nothing makes no version.';

/** What the CapabilityStatement says of $validate beyond its definition. */
export const VALIDATE =
  '[base]/$validate and [type]/$validate work for every R4 resource type, also those this server does not store (the resource in the body, raw or as the resource parameter of a Parameters; profile and mode create | update | delete | profile). Conformance resources given in parameters named definition (a StructureDefinition, ValueSet, CodeSystem, Questionnaire, or a Bundle of them) are the context of that call only: used, not judged, never stored. [type]/[id]/$validate validates the stored resource, or checks mode=delete against it.';

/** What the CapabilityStatement says of $export (docs/decisions/020-bulk-data.md). */
const EXPORT =
  "FHIR Bulk Data Access v2, asynchronous (Prefer: respond-async; kick-off by GET, or by POST of a Parameters resource; status at [base]/_bulk/[id], DELETE cancels), with _type, _since and _outputFormat application/fhir+ndjson (or application/ndjson, ndjson); not _typeFilter, _elements, patient or includeAssociatedData; Binary is not exported. Every row is read through the caller's access rules; the status and the files answer to the same caller only and are deleted BULK_EXPORT_TTL seconds after completion.";

/** Every operation the server answers; the router and the CapabilityStatement read this list. */
export const OPERATIONS: OperationEntry[] = [
  {
    name: 'everything',
    definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
    system: false,
    types: ['Patient'],
    type: false,
    instance: true,
    documentation: 'Instance level only (Patient/[id]/$everything), with _since, _type and _count; start and end (care dates) are not supported; not for all patients at once.',
    affectsState: false,
    handler: everything,
  },
  {
    name: 'export',
    definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export',
    system: true,
    types: [],
    type: false,
    instance: false,
    documentation: `${EXPORT} [base]/$export: every resource the caller may read, the directory included.`,
    affectsState: false,
    handler: exportKickOff,
  },
  {
    name: 'export',
    definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export',
    system: false,
    types: ['Patient'],
    type: true,
    instance: false,
    documentation: `${EXPORT} Patient/$export: the resources of the patient records the caller may read.`,
    affectsState: false,
    handler: exportKickOff,
  },
  {
    name: 'export',
    definition: 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export',
    system: false,
    types: ['Group'],
    type: false,
    instance: true,
    documentation: `${EXPORT} Group/[id]/$export (docs/decisions/030-groups.md): the resources of the records of the Group's Patient members (member.entity; a member with inactive true or a period not covering the kick-off is left out), types as Patient/$export, each row through the caller's access rules. Groups are read by administrators only: for anyone else every Group is 404. _since filters by lastUpdated only (no older resources of members added since).`,
    affectsState: false,
    handler: exportKickOff,
  },
  {
    name: 'validate',
    definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate',
    system: true,
    types: '*',
    type: true,
    instance: true,
    documentation: VALIDATE,
    affectsState: false,
    storageFree: true,
    handler: validateOperation,
  },
  {
    name: 'expand',
    definition: 'http://hl7.org/fhir/OperationDefinition/ValueSet-expand',
    system: false,
    types: ['ValueSet'],
    type: true,
    instance: true,
    affectsState: false,
    handler: expand,
  },
  {
    name: 'validate-code',
    definition: 'http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code',
    system: false,
    types: ['ValueSet'],
    type: true,
    instance: true,
    affectsState: false,
    handler: valueSetValidateCode,
  },
  {
    name: 'validate-code',
    definition: 'http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code',
    system: false,
    types: ['CodeSystem'],
    type: true,
    instance: true,
    affectsState: false,
    handler: codeSystemValidateCode,
  },
  {
    name: 'meta',
    definition: 'http://hl7.org/fhir/OperationDefinition/Resource-meta',
    system: true,
    types: '*',
    type: true,
    instance: true,
    documentation: 'At type and system level: the profiles, tags and security labels of the current resources the caller may read.',
    affectsState: false,
    handler: metaOperation,
  },
  {
    name: 'meta-add',
    definition: 'http://hl7.org/fhir/OperationDefinition/Resource-meta-add',
    system: false,
    types: '*',
    type: false,
    instance: true,
    documentation: META_CHANGE,
    affectsState: true,
    handler: metaAdd,
  },
  {
    name: 'meta-delete',
    definition: 'http://hl7.org/fhir/OperationDefinition/Resource-meta-delete',
    system: false,
    types: '*',
    type: false,
    instance: true,
    documentation: META_CHANGE,
    affectsState: true,
    handler: metaDelete,
  },
  {
    name: 'mask-all',
    definition: 'https://fhir.dmp.esante.example/OperationDefinition/DocumentReference-mask-all',
    system: false,
    types: ['DocumentReference'],
    type: true,
    instance: false,
    affectsState: true,
    handler: maskAllDocuments,
  },
  {
    name: 'unmask-all',
    definition: 'https://fhir.dmp.esante.example/OperationDefinition/DocumentReference-unmask-all',
    system: false,
    types: ['DocumentReference'],
    type: true,
    instance: false,
    affectsState: true,
    handler: unmaskAllDocuments,
  },
  {
    name: 'close',
    definition: 'https://fhir.dmp.esante.example/OperationDefinition/Communication-close',
    system: false,
    types: ['Communication'],
    type: false,
    instance: true,
    affectsState: true,
    handler: closeConversation,
  },
  {
    name: 'delete-copy',
    definition: 'https://fhir.dmp.esante.example/OperationDefinition/Communication-delete-copy',
    system: false,
    types: ['Communication'],
    type: false,
    instance: true,
    affectsState: true,
    handler: deleteCopy,
  },
  {
    name: 'file-to-record',
    definition: 'https://fhir.dmp.esante.example/OperationDefinition/Communication-file-to-record',
    system: false,
    types: ['Communication'],
    type: false,
    instance: true,
    affectsState: true,
    handler: fileToRecord,
  },
];

/** What the lifecycle operations have in common (docs/decisions/017-record-lifecycle.md). */
const LIFECYCLE =
  'POST only. Allowed to the patient (own record), their legal representative (while they act: a minor\'s representatives stop at 18) and an administrator; an opposed or closed record is acted on by an administrator, but for the person withdrawing their own opposition ($reopen) (restoring or deleting an archive needs the legal-hold scope). Wrong state: 409. Audited. The state is shown on the Patient in the extension https://fhir.dmp.esante.example/StructureDefinition/dmp-record-state and Patient.active.';

const lifecycle = (name: string, handler: OperationEntry['handler'], documentation: string): OperationEntry => ({
  name,
  definition: `https://fhir.dmp.esante.example/OperationDefinition/Patient-${name}`,
  system: false,
  types: ['Patient'],
  type: false,
  instance: true,
  documentation: `${documentation} ${LIFECYCLE}`,
  affectsState: true,
  handler,
});

OPERATIONS.push(
  lifecycle('oppose', oppose, 'Patient/[id]/$oppose: an open record (not activated) becomes opposed: nothing is read or deposited for the person (403, issue.details RECORD_OPPOSED).'),
  lifecycle('activate', activate, 'Patient/[id]/$activate: an open record becomes activated (the patient connected).'),
  lifecycle(
    'close',
    close,
    'Patient/[id]/$close?mode=archive|delete. archive: unreadable and unwritable by everyone through the API, kept RECORD_RETENTION_DAYS (default 3650) then deleted by npm run purge. delete: every row of the record deleted in this transaction (cascade=true: also the records of the RelatedPersons the holder\'s Patient.link names); one AuditEvent of the deletion is kept outside the record.',
  ),
  lifecycle('reopen', reopen, 'Patient/[id]/$reopen: an opposed record (the patient, their representative or an administrator) or an archived one (administrator with the legal-hold scope) becomes open again.'),
);

export function operationAppliesTo(op: OperationEntry, resourceType: string): boolean {
  return op.types === '*' || op.types.includes(resourceType);
}

import type { CapabilityStatement, CapabilityStatementRestResource, CapabilityStatementRestSecurity, CodeableConcept } from 'fhir/r4';
import { ADMIN_WRITE_TYPES } from '../access/policy/decide';
import type { Config } from '../config/config';
import pkg from '../../package.json';
import { OPERATIONS, operationAppliesTo } from '../operations/registry';
import type { InteractionContext } from './types';
import { checksReferences } from '../integrity/references';
import { NATIONAL_IDENTIFIER_SYSTEMS } from '../integrity/uniqueIdentifiers';

/**
 * Result parameters are not search parameters: they are stated in the documentation,
 * not in searchParam (which holds parameters with a definition).
 */
const RESULT_PARAMETERS =
  'Result parameters: _count (page size), _sort (any listed date, string, token, number, quantity, uri or reference parameter, - for descending, several keys), _total (none | estimate | accurate), _summary (true | text | data | count | false), _elements, _include, _revinclude. History: _since, _at, _count.';

const RESTFUL_SECURITY_SERVICE = 'http://terminology.hl7.org/CodeSystem/restful-security-service';

/**
 * How callers authenticate (docs/decisions/007-authentication.md). No oauth-uris extension:
 * this server runs no authorization server, so it has no authorize or token endpoint to
 * state; the description says where tokens come from instead.
 */
export function restSecurity(config: Pick<Config, 'corsOrigins' | 'tls'>): CapabilityStatementRestSecurity {
  const certificates = Boolean(config.tls?.clientCa);
  const service: CodeableConcept[] = [
    {
      coding: [{ system: RESTFUL_SECURITY_SERVICE, code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' }],
      text: 'Bearer tokens with SMART App Launch v2 scopes, issued by the identity providers this server trusts',
    },
  ];
  if (certificates) {
    service.push({
      coding: [{ system: RESTFUL_SECURITY_SERVICE, code: 'Certificates', display: 'Certificates' }],
      text: 'Client certificates of health professionals (RPPS number in the subject CN)',
    });
  }
  const description = [
    'Every request except GET [base]/metadata and GET [base]/.well-known/smart-configuration carries `Authorization: Bearer <JWT>`, signed (RS256 or ES256) by an identity provider this server trusts; the server verifies it and runs no authorization server of its own, so no OAuth endpoint is published here (ask the identity provider for its authorize and token endpoints).',
    'Claims: `sub`, `fhirUser` (the caller\'s Practitioner, Patient, RelatedPerson or Device on this server), `scope` with SMART v2 scopes (`patient/`, `user/`, `system/`; v1 suffixes are mapped, scopes with query restrictions grant nothing), `practitioner_role` optionally. Scopes bound what a caller may ask; the access policy (consent, habilitation, document labels) bounds what they get.',
    'Emergency access: a professional whose profession allows it sends `X-Break-Glass: <reason>`; it is audited and the patient is told.',
    'Systems (fhirUser Device/[id]) deposit the document types the habilitation matrix gives their Device.type, and write a List only as the SubmissionSet or Folder of a deposit (List.code carries exactly one coding, submissionset or folder of MHDlistTypes); they write no Provenance. A system that deposits finds the patient it deposits for only with exactly `GET [base]/Patient?identifier=<INS system>|<whole INS, key valid>`: for an open record, the Patient reduced to id, the INS sent and active, tagged SUBSETTED (audited as its access); it reads no other Patient (any other Patient search 403, by id 404, none through includes, _has, chains, compartments, $everything or exports) and names the patient in its writes by id or by the conditional reference Patient?identifier=<INS system>|<INS> (docs/decisions/035-what-a-depositing-system-reads.md). A system whose type deposits nothing (a catalogue application with its own token) has no record open to it: 403 on a Patient search, 404 by id, its writes in a record refused as for an unknown patient (docs/decisions/034-systems-that-deposit-nothing.md).',
    'No token or a refused one: 401 with `WWW-Authenticate: Bearer`; authenticated but not allowed: 403 with an OperationOutcome saying why. A record closed to the caller answers every request addressing it or one of its resources (any method, its conditional writes naming the patient, each Bundle entry) with the same 403, before the body is looked at.',
    'Record lookup by INS (docs/decisions/033-record-lookup-by-ins.md): a professional of the habilitation matrix who may not enter a record finds it with exactly `GET [base]/Patient?identifier=<INS system>|<whole INS, key valid>` (INS-NIR, INS-NIA, INS-NIR-TEST or INS-NIR-DEMO; one value, no other parameter but _format and _pretty): the Patient reduced to id, the INS sent and active, tagged SUBSETTED, with an OperationOutcome entry (search.mode outcome, details dmp-record-refusal NO_CONSENT or BLOCKED) saying why, so the EHR declares the consent or sends X-Break-Glass on Patient/[id]. The lookup is audited as a refused attempt, without notification. An opposed or closed record, any other shape and any other caller get the ordinary search: nothing of a record the caller may not enter (a system that deposits: see above).',
    'Client-chosen ids: PUT [type]/[id] onto an id the caller cannot read creates the resource only for administrators, on the types they write (updateCreate true); every other caller creates with POST and gets 403 for such a PUT, the same whether the id is free or held by a resource hidden from them.',
    'References to resources the caller cannot read (List.entry, DocumentReference.relatesTo and context.related, Provenance.target and entity, AuditEvent.entity but for administrators, Group.member) are withheld from what they read, and the resource is tagged SUBSETTED; a resource tagged SUBSETTED is refused on create and update (400).',
    certificates
      ? 'Mutual TLS: a client certificate verified against the configured CA and naming a Practitioner by RPPS number authenticates that practitioner without a token (scopes user/*.cruds); a presented certificate that does not verify is refused.'
      : undefined,
    config.corsOrigins.length > 0 ? 'Browser applications from the configured origins may call cross-origin (CORS, without credentials mode: tokens go in the Authorization header).' : undefined,
  ].filter((line): line is string => line !== undefined);
  return { cors: config.corsOrigins.length > 0, service, description: description.join('\n\n') };
}

/**
 * The CapabilityStatement, generated from the registry the router and search parser
 * use: every type, interaction and search parameter listed here is served.
 */
export function capabilityStatement(ctx: InteractionContext): CapabilityStatement {
  const resource: CapabilityStatementRestResource[] = [];
  // Our profiles (and those loaded through the API), by the type they constrain.
  const profilesByType = new Map<string, string[]>();
  const ours = (ctx.validator?.conformanceResources('StructureDefinition') ?? []) as { kind?: string; type?: string; url?: string; derivation?: string }[];
  for (const sd of ours) {
    if (sd.kind !== 'resource' || sd.derivation !== 'constraint' || !sd.type || !sd.url) continue;
    profilesByType.set(sd.type, [...(profilesByType.get(sd.type) ?? []), sd.url]);
  }
  for (const entry of ctx.registry.types.values()) {
    const searchParam = [
      { name: '_id', type: 'token' as const, definition: 'http://hl7.org/fhir/SearchParameter/Resource-id' },
      { name: '_lastUpdated', type: 'date' as const, definition: 'http://hl7.org/fhir/SearchParameter/Resource-lastUpdated' },
    ];
    for (const [code, p] of ctx.registry.searchParams(entry.type)) {
      if (code === '_id' || code === '_lastUpdated') continue;
      searchParam.push({ name: code, type: p.type as 'token', definition: p.def.url, ...(p.def.description ? { documentation: p.def.description } : {}) } as never);
    }
    const referenceParams = [...ctx.registry.searchParams(entry.type)].filter(([, p]) => p.type === 'reference').map(([code]) => code);
    const revIncludes: string[] = [];
    for (const other of ctx.registry.types.values()) {
      for (const [code, p] of ctx.registry.searchParams(other.type)) {
        if (p.type === 'reference' && (!p.def.target || p.def.target.includes(entry.type))) revIncludes.push(`${other.type}:${code}`);
      }
    }
    const operations = OPERATIONS.filter((o) => operationAppliesTo(o, entry.type) && (o.name !== 'validate' || ctx.validator)).map((o) => ({ name: o.name, definition: o.definition, ...(o.documentation ? { documentation: o.documentation } : {}) }));
    // a profile that applies to every resource of the type is its base profile; one that applies to some (a Patient with an INS) is said in the documentation
    const defaults = (ctx.validator?.defaultProfiles?.() ?? []).filter((d) => d.resourceType === entry.type);
    const always = defaults.find((d) => !d.when)?.profile;
    const sometimes = defaults.filter((d) => d.when).map((d) => d.profile);
    const unique = NATIONAL_IDENTIFIER_SYSTEMS[entry.type];
    const documentation = [
      entry.documentation,
      sometimes.length ? `A ${entry.type} carrying an INS is checked against ${sometimes.join(', ')} whether or not meta.profile claims it.` : undefined,
      unique ? `One current ${entry.type} per national identifier (${unique.join(', ')}): a second holder is refused with 409.` : undefined,
    ].filter(Boolean);
    const checked = checksReferences(entry.type);
    resource.push({
      type: entry.type as CapabilityStatementRestResource['type'],
      profile: always ?? `http://hl7.org/fhir/StructureDefinition/${entry.type}`,
      ...(profilesByType.get(entry.type) ? { supportedProfile: profilesByType.get(entry.type) } : {}),
      searchInclude: ['*', ...referenceParams.map((code) => `${entry.type}:${code}`)],
      searchRevInclude: revIncludes,
      ...(operations.length ? { operation: operations } : {}),
      ...(documentation.length ? { documentation: documentation.join(' ') } : {}),
      interaction: entry.interactions.map((code) =>
        code === 'delete'
          ? { code, documentation: 'Refused with 409 while other current resources reference it; `_cascade=delete` deletes them too (each as a deletion by the caller; never a Patient, at most 100).' }
          : { code },
      ),
      versioning: 'versioned-update',
      readHistory: true,
      // a client-chosen id is taken only where no row of the type can be hidden from the caller (docs/decisions/012-update-as-create.md)
      updateCreate: ADMIN_WRITE_TYPES.includes(entry.type),
      conditionalCreate: true,
      conditionalRead: 'full-support',
      conditionalUpdate: true,
      conditionalDelete: 'single',
      // references to this server must resolve when written (docs/decisions/014-integrity.md); the audit trail and stored Bundles are exempt
      referencePolicy: checked ? ['literal', 'logical', 'enforced', 'local'] : ['literal', 'logical', 'local'],
      searchParam: searchParam as never,
    });
  }
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString().slice(0, 10),
    publisher: 'National personal health record',
    kind: 'instance',
    software: { name: pkg.name, version: pkg.version },
    implementation: { description: 'FHIR R4 server of the national personal health record', url: ctx.config.baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json', 'application/fhir+xml', 'xml'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json', 'application/fhir+xml'],
    rest: [
      {
        mode: 'server',
        security: restSecurity(ctx.config),
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
        documentation: 'Search: chaining (several levels, :Type), reverse chaining (_has, nested), _include/_revinclude (:iterate, *), compartment search Patient/[id]/[type] and Patient/[id]/*, composite parameters (components matched on the same resource, not necessarily the same element), token :of-type, :in and :not-in (ValueSets known to the server); not supported: _text, _content, _filter, _contained, token :above/:below. String (starts-with, :exact, :contains, accent- and case-insensitive), token (system|code, :not, :text), reference (Type/id, id, absolute URL, :Type, :identifier), date/number/quantity with prefixes, uri (:above, :below), :missing; AND/OR; keyset paging with signed page tokens. ' + RESULT_PARAMETERS,
        resource,
        interaction: [
          {
            code: 'transaction',
            documentation:
              'IHE MHD ITI-65 Provide Document Bundle (a transaction with an MHD/PDSm Provide Bundle profile or a SubmissionSet List): exactly one SubmissionSet; attachment size and SHA-1 hash computed from the Binary in the Bundle (or inline data), a differing submitted value refused (422, one issue per element with its expression); a document masterIdentifier or SubmissionSet identifier already stored refused (409); the Binary stored in its document\'s record; relatesTo replaces supersedes the replaced document unless the Bundle changes it itself; atomic, transaction-response in request order; entry errors name Bundle.entry[i].resource elements, with the XDS error code in issue.details.text where one applies; a submission whose patient carries an INS meets the PDSm profiles (dmp-submission-set, dmp-document-reference, dmp-folder) whether or not it claims them.',
          },
          { code: 'batch' },
          { code: 'history-system' },
        ],
        operation: OPERATIONS.filter((o) => o.system && (o.name !== 'validate' || ctx.validator)).map((o) => ({ name: o.name, definition: o.definition, ...(o.documentation ? { documentation: o.documentation } : {}) })),
        searchParam: [{ name: '_list', type: 'special', documentation: 'Members of List/[id] (any type)' }],
      },
    ],
  };
}

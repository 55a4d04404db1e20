import type { CapabilityStatement, CapabilityStatementRestResource } from 'fhir/r4';
import pkg from '../../package.json';
import { OPERATIONS, operationAppliesTo } from '../operations/registry';
import type { InteractionContext } from './types';

/**
 * Result parameters are not search parameters: they are stated in the documentation,
 * not in searchParam (which holds parameters with a definition).
 */
const RESULT_PARAMETERS =
  'Result parameters: _count (page size), _sort (any listed date, string, token, number, quantity, uri or reference parameter, - for descending, several keys), _total (none | estimate | accurate), _summary (true | text | data | count | false), _elements, _include, _revinclude. History: _since, _at, _count.';

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
    resource.push({
      type: entry.type as CapabilityStatementRestResource['type'],
      profile: `http://hl7.org/fhir/StructureDefinition/${entry.type}`,
      ...(profilesByType.get(entry.type) ? { supportedProfile: profilesByType.get(entry.type) } : {}),
      searchInclude: ['*', ...referenceParams.map((code) => `${entry.type}:${code}`)],
      searchRevInclude: revIncludes,
      ...(operations.length ? { operation: operations } : {}),
      ...(entry.documentation ? { documentation: entry.documentation } : {}),
      interaction: entry.interactions.map((code) => ({ code })),
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalRead: 'full-support',
      conditionalUpdate: true,
      conditionalDelete: 'single',
      referencePolicy: ['literal', 'logical', 'local'],
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
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
        documentation: 'Search: chaining (several levels, :Type), reverse chaining (_has, nested), _include/_revinclude (:iterate, *), compartment search Patient/[id]/[type] and Patient/[id]/*, composite parameters (components matched on the same resource, not necessarily the same element), token :of-type, :in and :not-in (ValueSets known to the server); not supported: _text, _content, _filter, _contained, token :above/:below. String (starts-with, :exact, :contains, accent- and case-insensitive), token (system|code, :not, :text), reference (Type/id, id, absolute URL, :Type, :identifier), date/number/quantity with prefixes, uri (:above, :below), :missing; AND/OR; keyset paging with signed page tokens. ' + RESULT_PARAMETERS,
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }],
        operation: OPERATIONS.filter((o) => o.system && (o.name !== 'validate' || ctx.validator)).map((o) => ({ name: o.name, definition: o.definition })),
        searchParam: [{ name: '_list', type: 'special', documentation: 'Members of List/[id] (any type)' }],
      },
    ],
  };
}

import { RECORD_REFUSAL_SYSTEM } from '../access/policy/recordState';
import { operationOutcome } from '../errors';
import { SUBSETTED } from '../subsettedTag';
import type { RecordLookup } from '../store/session';
import { fullUrl, queryString } from './bundlePage';
import type { FhirResponse, InteractionContext } from './types';

/**
 * The answer to a professional's lookup by INS of a record they may not enter
 * (docs/decisions/033-record-lookup-by-ins.md): the Patient reduced to what identifies the
 * record, nothing the caller did not send but its id, and an outcome saying why they may
 * not enter it (so that the EHR declares the consent, or breaks the glass, on that id). A
 * depositing system's lookup gets the same Patient and no outcome: nothing is refused to it
 * (docs/decisions/035-what-a-depositing-system-reads.md).
 */
export function lookupBundle(ctx: InteractionContext, query: [string, string][], lookup: RecordLookup): FhirResponse {
  const patient = {
    resourceType: 'Patient',
    id: lookup.patientId,
    // no versionId, no lastUpdated: when the record last changed is not the caller's to know
    meta: { tag: [SUBSETTED] },
    identifier: [{ system: lookup.identifier.system, value: lookup.identifier.value }],
    // only an open record is told (an opposed or closed one answers as none)
    active: true,
  };
  const outcome = lookup.refusal
    ? operationOutcome([
        { severity: 'information', code: 'forbidden', details: { coding: [{ system: RECORD_REFUSAL_SYSTEM, code: lookup.refusal }] }, diagnostics: lookup.reason ?? '', expression: ['Patient'] },
      ])
    : undefined;
  const q = queryString(query);
  return {
    status: 200,
    resource: {
      resourceType: 'Bundle',
      type: 'searchset',
      total: 1,
      link: [{ relation: 'self', url: `${ctx.config.baseUrl}/Patient${q ? `?${q}` : ''}` }],
      entry: [
        { fullUrl: fullUrl(ctx, 'Patient', lookup.patientId), resource: patient, search: { mode: 'match' } },
        ...(outcome ? [{ resource: outcome, search: { mode: 'outcome' } }] : []),
      ],
    },
  };
}

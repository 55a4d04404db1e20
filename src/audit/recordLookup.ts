import crypto from 'node:crypto';
import { newVersion } from '../interactions/common';
import type { FhirRequest, InteractionContext } from '../interactions/types';
import type { RecordLookup, Session } from '../store/session';
import { auditEvent } from './auditEvent';

/**
 * The trace of a professional's lookup by INS that told them a record they may not enter
 * (docs/decisions/033-record-lookup-by-ins.md): an attempt refused (outcome 4) in that
 * record, with the reason and the query, written with the answer. Like every refusal it makes
 * no notice (decision 009): the patient reads it in their trail.
 */
export async function auditRecordLookup(ctx: InteractionContext, session: Session, req: FhirRequest, lookup: RecordLookup): Promise<void> {
  const agent = session.access.auditAgent;
  if (ctx.withoutAudit || !agent) return;
  const recorded = new Date().toISOString();
  const event = auditEvent(
    agent,
    { interaction: 'search-type' },
    4,
    { patient: lookup.patientId, resources: [], query: new URLSearchParams(req.query).toString(), queriedType: 'Patient', target: `${req.method} Patient` },
    { recorded, serverUrl: ctx.config.baseUrl, outcomeDesc: `Record lookup by national identifier: ${lookup.reason ?? ''}` },
  );
  const version = newVersion(ctx, event, { id: crypto.randomUUID(), versionId: 1, lastUpdated: recorded, method: 'POST' });
  await session.writeAudit([{ ...version, compartment: lookup.patientId }]);
}

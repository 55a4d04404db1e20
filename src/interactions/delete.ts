import { Conflict, PreconditionFailed } from '../errors';
import { referrersOf } from '../store/integrity';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { assertId, assertSupportedType, bodyOfRow, checkIfMatch, deletionVersion, nowInstant } from './common';
import { unregisterConformance } from './conformanceResources';
import { findMatches } from './search';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

/** Most resources one `_cascade=delete` deletes besides the one asked for (docs/decisions/014-integrity.md). */
export const CASCADE_LIMIT = 100;

async function deleteResource(ctx: InteractionContext, session: Session, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  // the body comes with the lock: the policy decides the deletion with the version it removes
  const current = await readCurrent(session, type, id, { forUpdate: true });
  checkIfMatch(req, current && !current.deleted ? current.versionId : undefined, `${type}/${id}`);
  // Deleting what does not exist, or is already deleted, succeeds without a new version.
  if (!current || current.deleted) return { status: 204 };
  if (cascadeRequested(req)) await deleteReferrers(ctx, session, type, id, current.compartment);
  const versionId = current.versionId + 1;
  // whether something still references it is checked before commit, once every deletion of the interaction is known
  await session.write([deletionVersion(type, id, current.compartment, versionId, nowInstant(), bodyOfRow(current))]);
  await unregisterConformance(ctx, session, type, id, versionId);
  return { status: 200, versionId, resource: { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics: `${type}/${id} deleted (version ${versionId})` }] } };
}

function cascadeRequested(req: FhirRequest): boolean {
  return req.query.some(([name, value]) => name === '_cascade' && value === 'delete');
}

/**
 * `_cascade=delete` (as HAPI FHIR): the resources that reference [type]/[id], and theirs,
 * deleted first, each as an ordinary deletion by the caller (the write check applies to
 * each). A record (Patient) is never deleted this way: it leaves through its lifecycle.
 */
async function deleteReferrers(ctx: InteractionContext, session: Session, type: string, id: string, compartment: string): Promise<void> {
  if (type === 'Patient') throw new Conflict('A Patient record is not deleted by cascade: it leaves through the record lifecycle operations');
  const all = new Map<string, { resourceType: string; id: string }>([[`${type}/${id}`, { resourceType: type, id }]]);
  // the compartment lets a Binary's documents and messages be found in its record (decision 021, amendment)
  let frontier: { resourceType: string; id: string; compartment?: string }[] = [{ resourceType: type, id, compartment }];
  const found: { resourceType: string; id: string }[] = [];
  while (frontier.length > 0) {
    const referrers = await referrersOf(session, frontier, CASCADE_LIMIT + 1);
    const next: { resourceType: string; id: string }[] = [];
    for (const r of referrers) {
      const key = `${r.resourceType}/${r.id}`;
      if (all.has(key)) continue;
      if (r.resourceType === 'Patient') throw new Conflict(`${type}/${id} is referenced by a Patient record, which is not deleted by cascade: it leaves through the record lifecycle operations`);
      all.set(key, { resourceType: r.resourceType, id: r.id });
      next.push({ resourceType: r.resourceType, id: r.id });
    }
    found.push(...next);
    if (found.length > CASCADE_LIMIT) throw new Conflict(`_cascade=delete would delete more than ${CASCADE_LIMIT} resources: delete them in parts`);
    frontier = next;
  }
  for (const r of found) {
    const current = await readCurrent(session, r.resourceType, r.id, { forUpdate: true });
    // a referrer the caller cannot read cannot be deleted by them either: the cascade stops with the ordinary refusal
    if (!current || current.deleted) continue;
    const versionId = current.versionId + 1;
    await session.write([deletionVersion(r.resourceType, r.id, current.compartment, versionId, nowInstant(), bodyOfRow(current))]);
    await unregisterConformance(ctx, session, r.resourceType, r.id, versionId);
  }
}

/** delete: DELETE [type]/[id]. History is kept: vread of earlier versions still works. */
export async function remove(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  return deleteResource(ctx, session, req, assertSupportedType(ctx, req.resourceType), assertId(req.id));
}

/** Conditional delete: DELETE [type]?criteria, a single match (412 on several). */
export async function conditionalDelete(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const criteria = new URLSearchParams(req.query.filter(([name]) => name !== '_cascade')).toString();
  const matches = await findMatches(ctx, session, type, criteria, 2);
  if (matches.length > 1) throw new PreconditionFailed(`Conditional delete: "${criteria}" matches more than one ${type}`);
  if (matches.length === 0) return { status: 204 };
  return deleteResource(ctx, session, req, type, matches[0].id);
}

import { PreconditionFailed } from '../errors';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { assertId, assertSupportedType, bodyOfRow, checkIfMatch, deletionVersion, nowInstant } from './common';
import { unregisterConformance } from './conformanceResources';
import { findMatches } from './search';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

async function deleteResource(ctx: InteractionContext, session: Session, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  // the body comes with the lock: the policy decides the deletion with the version it removes
  const current = await readCurrent(session, type, id, { forUpdate: true });
  checkIfMatch(req, current && !current.deleted ? current.versionId : undefined, `${type}/${id}`);
  // Deleting what does not exist, or is already deleted, succeeds without a new version.
  if (!current || current.deleted) return { status: 204 };
  const versionId = current.versionId + 1;
  await session.write([deletionVersion(type, id, current.compartment, versionId, nowInstant(), bodyOfRow(current))]);
  await unregisterConformance(ctx, session, type, id, versionId);
  return { status: 200, versionId, resource: { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics: `${type}/${id} deleted (version ${versionId})` }] } };
}

/** delete: DELETE [type]/[id]. History is kept: vread of earlier versions still works. */
export async function remove(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  return deleteResource(ctx, session, req, assertSupportedType(ctx, req.resourceType), assertId(req.id));
}

/** Conditional delete: DELETE [type]?criteria, a single match (412 on several). */
export async function conditionalDelete(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const criteria = new URLSearchParams(req.query).toString();
  const matches = await findMatches(ctx, session, type, criteria, 2);
  if (matches.length > 1) throw new PreconditionFailed(`Conditional delete: "${criteria}" matches more than one ${type}`);
  if (matches.length === 0) return { status: 204 };
  return deleteResource(ctx, session, req, type, matches[0].id);
}

import crypto from 'node:crypto';
import { PreconditionFailed } from '../http/errors';
import { lockCriteria } from '../store/resources';
import type { Session } from '../store/session';
import { assertSupportedType, newVersion, nowInstant, requestResource } from './common';
import { assertValid, registerConformance } from './conformanceResources';
import { findMatches } from './search';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

/** create: POST [type]. The server assigns the id; a client id in the body is ignored. */
export async function create(ctx: InteractionContext, session: Session, req: FhirRequest, assignedId?: string): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const { resource, binary } = requestResource(req, type);
  assertValid(ctx, resource, 'create');

  const ifNoneExist = req.headers['if-none-exist'];
  if (ifNoneExist) {
    const criteria = ifNoneExist.replace(/^[^?]*\?/, '');
    await lockCriteria(session, type, criteria);
    const matches = await findMatches(ctx, session, type, criteria, 2);
    if (matches.length > 1) throw new PreconditionFailed(`If-None-Exist "${ifNoneExist}" matches ${matches.length} or more ${type} resources`);
    if (matches.length === 1) {
      const existing = JSON.parse(matches[0].body) as Record<string, unknown>;
      const meta = existing.meta as { versionId: string; lastUpdated: string };
      return {
        status: 200,
        resource: existing,
        location: `${type}/${matches[0].id}/_history/${meta.versionId}`,
        versionId: Number(meta.versionId),
        lastModified: new Date(meta.lastUpdated),
      };
    }
  }

  const id = assignedId ?? crypto.randomUUID();
  const version = newVersion(ctx, resource, { id, versionId: 1, lastUpdated: nowInstant(), method: 'POST', binary });
  registerConformance(ctx, version.body as Record<string, unknown>);
  await session.write([version]);
  return {
    status: 201,
    resource: version.body as Record<string, unknown>,
    location: `${type}/${id}/_history/1`,
    versionId: 1,
    lastModified: new Date(version.lastUpdated),
  };
}

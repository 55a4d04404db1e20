import crypto from 'node:crypto';
import { PreconditionFailed } from '../errors';
import type { Session } from '../store/session';
import { assertSupportedType, newVersion, nowInstant, requestResource, writtenRepresentation } from './common';
import { withConditionalReferencesResolved } from './conditionalReferences';
import { assertUniqueCanonical, assertValid, registerConformance } from './conformanceResources';
import { supersedeReplaced } from './documentReplacement';
import { assertNotSubmittedBefore, publishesInline, publishInlineContent, submissionProfile } from './documentSubmission';
import { assertRelationsInRecord } from './recordRelations';
import { findMatches, SearchRow } from './search';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

/**
 * The resource an If-None-Exist header selects, if any (412 when several do). The criteria
 * are locked first, so two concurrent conditional creates cannot both find nothing.
 */
export async function ifNoneExistMatch(ctx: InteractionContext, session: Session, type: string, ifNoneExist: string): Promise<SearchRow | undefined> {
  const criteria = ifNoneExist.replace(/^[^?]*\?/, '');
  const matches = await findMatches(ctx, session, type, criteria, 2, { lock: true });
  if (matches.length > 1) throw new PreconditionFailed(`If-None-Exist "${ifNoneExist}" matches more than one ${type}`);
  return matches[0];
}

/** create: POST [type]. The server assigns the id; a client id in the body is ignored. */
export async function create(ctx: InteractionContext, session: Session, req: FhirRequest, assignedId?: string): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const { resource: received, binary } = requestResource(ctx, req, type);
  // a client id on create is ignored (http.html#create), so it cannot make the resource invalid either
  const { id: _ignored, ...unresolved } = received;
  const resource = req.referencesResolved ? unresolved : await withConditionalReferencesResolved(ctx, session, unresolved);
  // an MHD submission to a national record meets the PDSm profiles, claimed or not (docs/decisions/029-dmp-submissions.md)
  const profile = req.submission ? await submissionProfile(ctx, session, resource, req.submission) : undefined;
  assertValid(ctx, resource, 'create', profile ? { profiles: [profile] } : {});

  const ifNoneExist = req.headers['if-none-exist'];
  const match = ifNoneExist ? await ifNoneExistMatch(ctx, session, type, ifNoneExist) : undefined;
  if (match) {
    const existing = JSON.parse(match.body) as Record<string, unknown>;
    const meta = existing.meta as { versionId: string; lastUpdated: string };
    return {
      status: 200,
      resource: existing,
      resourceText: match.body,
      location: `${type}/${match.id}/_history/${meta.versionId}`,
      versionId: Number(meta.versionId),
      lastModified: new Date(meta.lastUpdated),
    };
  }

  const id = assignedId ?? crypto.randomUUID();
  const lastUpdated = nowInstant();
  // ITI-105 Simplified Publish: the inline content is stored as a Binary of the document's record (docs/decisions/015-document-submissions.md)
  const published = publishesInline(type, resource) ? publishInlineContent(ctx, resource, lastUpdated) : undefined;
  if (published && assignedId === undefined) {
    const master = resource.masterIdentifier as { system?: string; value?: string } | undefined;
    if (master?.value) await assertNotSubmittedBefore(ctx, session, [{ type: 'DocumentReference', identifier: master, expression: 'DocumentReference.masterIdentifier' }]);
  }
  const version = newVersion(ctx, published?.resource ?? resource, { id, versionId: 1, lastUpdated, method: 'POST', binary, decimals: req.decimals });
  await assertUniqueCanonical(ctx, session, version.body as Record<string, unknown>, id);
  await registerConformance(ctx, session, version.body as Record<string, unknown>);
  // a document relates to, and a List gathers, documents of its own record (docs/decisions/029-dmp-submissions.md)
  await assertRelationsInRecord(ctx, session, version.body as Record<string, unknown>, version.compartment, undefined, new Set((published?.binaries ?? []).map((b) => b.id)));
  // the document first: a refusal of its references names its own elements, not its Binary's securityContext
  await session.write([version, ...(published?.binaries ?? [])]);
  // MHD replacement: the server supersedes the replaced document, unless a Provide Bundle changes it itself (the PDSm PATCH)
  if (req.replacement || (published && assignedId === undefined)) {
    await supersedeReplaced(ctx, session, version.body as Record<string, unknown>, version.compartment, req.prefer, req.replacement?.changedByBundle);
  }
  return {
    status: 201,
    ...(await writtenRepresentation(session, version, req.prefer)),
    location: `${type}/${id}/_history/1`,
    versionId: 1,
    lastModified: new Date(version.lastUpdated),
  };
}

import crypto from 'node:crypto';
import { BadRequest, FhirError, PreconditionFailed } from '../errors';
import { CurrentRow, readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import type { VersionWrite } from '../store/writeVersions';
import type { DecimalTexts } from '../json/decimals';
import { assertId, assertSupportedType, bodyOfRow, checkIfMatch, newVersion, nowInstant, requestResource, writtenRepresentation } from './common';
import { withConditionalReferencesResolved } from './conditionalReferences';
import { assertUniqueCanonical, assertValid, registerConformance } from './conformanceResources';
import { assertDocumentMetadataChange } from './documentMetadataPatch';
import { submissionProfile } from './documentSubmission';
import { assertRelationsInRecord } from './recordRelations';
import { findMatches } from './search';
import { mayHoldWithheld, namedWithheld, restoreWithheld } from '../access/referenceRedaction';
import { asWriterReadsIt } from './withheldReferences';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

/**
 * Stores a new version of [type]/[id] whose body is already known. The current row is
 * locked (SELECT … FOR UPDATE) so concurrent writers serialise and If-Match is exact.
 */
export async function storeNewVersion(
  ctx: InteractionContext,
  session: Session,
  req: FhirRequest,
  type: string,
  id: string,
  resource: Record<string, unknown>,
  binary?: VersionWrite['binary'],
  method: VersionWrite['method'] = 'PUT',
  idDrawnByServer = false,
): Promise<FhirResponse> {
  if (!req.referencesResolved) resource = await withConditionalReferencesResolved(ctx, session, resource);
  // validated as the caller sent it: an issue about a reference withheld from them would name it (decision 013)
  const sent = { ...resource, id };
  // the body comes with the lock: the policy decides the write with the version it replaces
  const current = await readCurrent(session, type, id, { forUpdate: true });
  checkIfMatch(req, current && !current.deleted ? current.versionId : undefined, `${type}/${id}`);
  let guessed: unknown[] | undefined;
  // the writer changes what they read: the references they were not shown stay (docs/decisions/013-references-to-hidden-resources.md)
  if (current && !current.deleted && current.body !== null && mayHoldWithheld(type, current.body)) {
    const { withheld } = await asWriterReadsIt(ctx, session, JSON.parse(current.body) as Record<string, unknown>);
    if (withheld.size) {
      // naming an item one was not shown is a guess: it is checked as a new reference, not kept
      guessed = namedWithheld(resource, withheld);
      resource = restoreWithheld(resource, withheld);
    }
  }
  const options = { binary, method, decimals: req.decimals, prefer: req.prefer, idDrawnByServer, guessed };
  const stored = current && !current.deleted && current.body !== null ? current : undefined;
  await afterWriteRules(session, stored && (() => nextVersion(ctx, id, resource, stored, options)), async () => {
    // a stored document's PUT changes what its PATCH may (docs/decisions/029-dmp-submissions.md); a PUT that creates is free.
    // Compared with its id: a conditional update's body may leave it out, the match gives it
    // and, as a PATCH, it is refused for what it changes (405) before its body is validated (docs/decisions/031-refusal-consistency.md)
    if (type === 'DocumentReference' && stored) assertDocumentMetadataChange(JSON.parse(stored.body!) as Record<string, unknown>, { ...resource, id }, 'PUT');
    // an MHD submission to a national record meets the PDSm profiles through its PUT entries too (docs/decisions/029-dmp-submissions.md)
    const profile = req.submission ? await submissionProfile(ctx, session, sent, req.submission) : undefined;
    assertValid(ctx, sent, 'update', profile ? { profiles: [profile] } : {});
  });
  return writeNewVersion(ctx, session, type, id, resource, current, options);
}

/**
 * Runs `checks`, what a write on a stored resource is refused for by the method (405) and the
 * validator (400, 422), after the write rules: when a check refuses, the rules decide the
 * version the write would make (`candidate`) first, and a caller they refuse is answered
 * their 403 (docs/decisions/031-refusal-consistency.md, amendment). An allowed write is
 * decided once, at the write. Without a candidate (a PUT that creates) the checks run alone.
 */
export async function afterWriteRules(session: Session, candidate: (() => VersionWrite) | undefined, checks: () => Promise<void> | void): Promise<void> {
  try {
    await checks();
  } catch (e) {
    if (candidate && e instanceof FhirError) {
      try {
        await session.access.checkWrites(session, [candidate()]);
      } catch (refusal) {
        // the rules' own refusal; anything else (a body the validator had yet to refuse, read by the rules) leaves the checks' answer
        if (refusal instanceof FhirError) throw refusal;
      }
    }
    throw e;
  }
}

export type VersionOptions = { binary?: VersionWrite['binary']; method?: VersionWrite['method']; decimals?: DecimalTexts; prefer?: FhirRequest['prefer']; idDrawnByServer?: boolean; guessed?: unknown[] };

/** The version that follows `current` (undefined for a new resource), as the write stores it and the rules decide it. */
export function nextVersion(ctx: InteractionContext, id: string, resource: Record<string, unknown>, current: CurrentRow | undefined, options: VersionOptions): VersionWrite {
  return newVersion(ctx, resource, {
    id,
    versionId: (current?.versionId ?? 0) + 1,
    lastUpdated: nowInstant(),
    method: options.method ?? 'PUT',
    previousCompartment: current?.compartment,
    previousBody: current ? bodyOfRow(current) : undefined,
    idDrawnByServer: options.idDrawnByServer,
    binary: options.binary,
    decimals: options.decimals,
    guessed: options.guessed,
  });
}

/**
 * Writes the version that follows `current` (the row the caller has locked and checked,
 * undefined for a new resource) and answers as an update does.
 */
export async function writeNewVersion(
  ctx: InteractionContext,
  session: Session,
  type: string,
  id: string,
  resource: Record<string, unknown>,
  current: CurrentRow | undefined,
  options: VersionOptions = {},
): Promise<FhirResponse> {
  const { prefer = {} } = options;
  const version = nextVersion(ctx, id, resource, current, options);
  const versionId = version.versionId;
  await assertUniqueCanonical(ctx, session, version.body as Record<string, unknown>, id);
  await registerConformance(ctx, session, version.body as Record<string, unknown>);
  // a document relates to, and a List gathers, documents of its own record (docs/decisions/029-dmp-submissions.md)
  await assertRelationsInRecord(ctx, session, version.body as Record<string, unknown>, version.compartment, (version.previousBody ?? undefined) as Record<string, unknown> | undefined);
  await session.write([version]);
  const created = !current || current.deleted;
  return {
    status: created ? 201 : 200,
    ...(await writtenRepresentation(session, version, prefer)),
    location: `${type}/${id}/_history/${versionId}`,
    versionId,
    lastModified: new Date(version.lastUpdated),
  };
}

/**
 * The resource and content of a PUT's body. When the body itself is refused (a `meta` that
 * is not an object, a Binary's contentType or data: 400, 422) on a resource stored and
 * visible to the caller, the write rules first decide the version the body asks for, as far
 * as it can be read (decision 031, amendment): a caller they refuse gets their 403.
 */
async function requestResourceAfterWriteRules(ctx: InteractionContext, session: Session, req: FhirRequest, type: string, id: string): Promise<ReturnType<typeof requestResource>> {
  try {
    return requestResource(ctx, req, type);
  } catch (e) {
    const body = req.body;
    if (!(e instanceof FhirError) || !body || typeof body !== 'object' || Array.isArray(body)) throw e;
    const current = await readCurrent(session, type, id, { forUpdate: true });
    if (!current || current.deleted || current.body === null) throw e;
    // what of the body the rules can read: neither a content nor a meta of the wrong shape
    const { data: _content, meta, ...rest } = body as Record<string, unknown>;
    const readable = { ...rest, ...(meta && typeof meta === 'object' && !Array.isArray(meta) ? { meta } : {}), resourceType: type, id };
    await afterWriteRules(session, () => nextVersion(ctx, id, readable, current, { method: 'PUT' }), () => {
      throw e;
    });
    throw e;
  }
}

/** update: PUT [type]/[id]; creates the resource with that id when it does not exist. */
export async function update(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const id = assertId(req.id);
  const { resource, binary } = await requestResourceAfterWriteRules(ctx, session, req, type, id);
  if (!(type === 'Binary' && req.rawBody)) {
    if (resource.id === undefined) throw new BadRequest(`The ${type} in the body has no id; it must be "${id}" as in the URL`, 'required', [`${type}.id`]);
    if (resource.id !== id) throw new BadRequest(`The id "${String(resource.id)}" in the body does not match the id "${id}" in the URL`, 'invalid', [`${type}.id`]);
  }
  return storeNewVersion(ctx, session, req, type, id, resource, binary);
}

/** Conditional update: PUT [type]?criteria. */
export async function conditionalUpdate(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const { resource, binary } = requestResource(ctx, req, type);
  const criteria = new URLSearchParams(req.query).toString();
  const matches = await findMatches(ctx, session, type, criteria, 2, { lock: true });
  if (matches.length > 1) throw new PreconditionFailed(`Conditional update: "${criteria}" matches more than one ${type}`);
  let id: string;
  if (matches.length === 1) {
    id = matches[0].id;
    if (resource.id !== undefined && resource.id !== id) {
      throw new BadRequest(`The id "${String(resource.id)}" in the body does not match the resource ${type}/${id} selected by the criteria`, 'invalid', [`${type}.id`]);
    }
  } else {
    id = resource.id !== undefined ? assertId(String(resource.id)) : (req.drawnId ?? crypto.randomUUID());
  }
  // an id the server draws is a create like a POST (docs/decisions/012-update-as-create.md)
  return storeNewVersion(ctx, session, req, type, id, resource, binary, 'PUT', matches.length === 0 && resource.id === undefined);
}

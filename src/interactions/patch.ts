import { Operation, validate as validatePatch } from 'fast-json-patch';
import { applyJsonPatch, JsonPatchFailure, moveIntoItself } from './jsonPatch';
import { DecimalTexts, decimalTexts } from '../json/decimals';
import { BadRequest, Gone, NotFound, PreconditionFailed, Unprocessable } from '../errors';
import { assertDocumentMetadataChange } from './documentMetadataPatch';
import { CurrentRow, readCurrent } from '../store/resources';
import { ContentKey, readBinaryContent, readWholeContent } from '../store/binaryContent';
import type { VersionWrite } from '../store/writeVersions';
import type { Session } from '../store/session';
import { assertId, assertSupportedType, checkIfMatch, splitBinaryData } from './common';
import { findMatches } from './search';
import { assertValid } from './conformanceResources';
import { applyOperations, Operation as FhirPathOperation, parseOperations, PatchError, PROTOTYPE_KEYS } from './fhirpathPatch';
import { afterWriteRules, nextVersion, VersionOptions, writeNewVersion } from './update';
import { namedWithheld, restoreWithheld } from '../access/referenceRedaction';
import { asWriterReadsIt } from './withheldReferences';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

/** The patch of a request: a JSON Patch document, or a FHIRPath Patch (a Parameters resource), checked before anything is read. */
function patchOf(req: FhirRequest): (resource: Record<string, unknown>) => Record<string, unknown> {
  const body = req.body as { resourceType?: unknown } | undefined;
  if (body && !Array.isArray(body) && typeof body === 'object' && body.resourceType === 'Parameters') {
    let operations: FhirPathOperation[];
    try {
      operations = parseOperations(body, req.resourceType!);
    } catch (e) {
      throw new BadRequest(`Invalid FHIRPath Patch: ${(e as Error).message}`, 'structure');
    }
    return (resource) => applyOperations(resource, operations);
  }
  if (!Array.isArray(body)) {
    throw new BadRequest('PATCH takes a JSON Patch document (application/json-patch+json) or a FHIRPath Patch Parameters resource (application/fhir+json)', 'structure');
  }
  const error = validatePatch(body as Operation[]);
  if (error) throw new BadRequest(`Invalid JSON Patch: ${error.message.split('\n')[0]} (operation ${error.index})`, 'structure');
  (body as Operation[]).forEach(assertNoPrototypeStep);
  (body as Operation[]).forEach((operation, index) => {
    const refused = moveIntoItself(operation);
    if (refused) throw new BadRequest(`Invalid JSON Patch: ${refused} (operation ${index})`, 'structure');
  });
  // the library bans writing to __proto__ and constructor/prototype; the check above also refuses reading through them
  return (resource) => applyJsonPatch(resource, body as Operation[]);
}

/** A JSON Pointer step (RFC 6901: ~1 is "/", ~0 is "~") naming a prototype is refused: no FHIR element has such a name. */
function assertNoPrototypeStep(operation: Operation, index: number): void {
  for (const pointer of [operation.path, (operation as { from?: string }).from]) {
    if (typeof pointer !== 'string') continue;
    const step = pointer.split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).find((s) => PROTOTYPE_KEYS.has(s));
    if (step !== undefined) throw new BadRequest(`Invalid JSON Patch: "${pointer}" names "${step}", which is not an element (operation ${index})`, 'structure');
  }
}

/**
 * The stored decimals a patch may keep: those outside arrays. A patch that removes or
 * inserts an array item shifts the paths after it, and a text kept by path would then
 * land on another element; inside arrays the patched resource falls back to plain numbers.
 */
function outsideArrays(texts: DecimalTexts | undefined): DecimalTexts | undefined {
  if (!texts) return undefined;
  const kept = new Map([...texts].filter(([pointer]) => !pointer.split('/').some((segment) => /^\d+$/.test(segment))));
  return kept.size ? kept : undefined;
}

async function patchResource(ctx: InteractionContext, session: Session, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  const apply = patchOf(req);
  const current = await readCurrent(session, type, id, { forUpdate: true });
  if (!current) throw new NotFound(`${type}/${id} is not known`);
  if (current.deleted) throw new Gone(`${type}/${id} was deleted`);
  checkIfMatch(req, current.versionId, `${type}/${id}`);
  // a Binary is patched whole, its content as base64 `data` (http.html: a patch applies to the resource)
  const content = type === 'Binary' ? await storedData(session, id, current) : undefined;
  const stored = { ...(JSON.parse(current.body!) as Record<string, unknown>), ...(content ? { data: content } : {}) };
  // a patch applies to the resource as the caller reads it; the references they were not shown stay
  // (docs/decisions/013-references-to-hidden-resources.md)
  const { view, withheld } = await asWriterReadsIt(ctx, session, stored);
  let patched: Record<string, unknown>;
  try {
    patched = apply(view);
  } catch (e) {
    // a JSON Patch failure is worded by the server already, a FHIRPath Patch one is a PatchError of ours; no other error's text is shown
    const diagnostics = e instanceof JsonPatchFailure ? e.message : e instanceof PatchError ? `Patch failed: ${e.message.split('\n')[0]}` : 'Patch failed: the patch does not apply to this resource';
    throw new Unprocessable([{ severity: 'error', code: 'processing', diagnostics }]);
  }
  // an item the caller was not shown and names anyway is a guess: checked as a new reference (decision 013)
  const guessed = withheld.size ? namedWithheld(patched, withheld) : [];
  if (withheld.size) patched = restoreWithheld(patched, withheld);
  if (patched.resourceType !== type || patched.id !== id) {
    throw new Unprocessable([{ severity: 'error', code: 'processing', diagnostics: 'A patch may not change resourceType or id' }]);
  }
  // the stored decimals keep their precision where the patch left them
  const options: VersionOptions = { method: 'PATCH', decimals: outsideArrays(decimalTexts(current.body!)), prefer: req.prefer, guessed };
  // a Binary's resource is stored without its content
  const { data: _content, ...withoutContent } = patched;
  const resource = type === 'Binary' ? withoutContent : patched;
  // a caller the write rules refuse is told so before what the method or the validator refuses (decision 031, amendment)
  await afterWriteRules(session, () => nextVersion(ctx, id, resource, current, options), () => {
    if (type === 'Binary') options.binary = patchedContent(ctx, patched, content, { compartment: current.compartment, id, versionId: current.versionId });
    if (type === 'DocumentReference') assertDocumentMetadataChange(JSON.parse(current.body!) as Record<string, unknown>, patched, 'PATCH');
    assertValid(ctx, resource, 'update', { patched: true });
  });
  // The row is locked and If-Match checked above: write the next version directly.
  return writeNewVersion(ctx, session, type, id, resource, current, options);
}

/** A stored Binary's content as base64 (undefined when it has none). */
async function storedData(session: Session, id: string, current: CurrentRow): Promise<string | undefined> {
  const content = await readBinaryContent(session, current.compartment, id, current.versionId);
  return content && content.size > 0 ? (await readWholeContent(content)).toString('base64') : undefined;
}

/**
 * The content of a patched Binary: the stored bytes kept (a link or a copy in the database,
 * not through this process) when the patch left `data` as it was, under the contentType the
 * patch leaves; else the patched `data`, checked as a PUT's.
 */
function patchedContent(ctx: InteractionContext, patched: Record<string, unknown>, before: string | undefined, stored: ContentKey): VersionWrite['binary'] {
  const { resource, binary } = splitBinaryData(patched, ctx.config.binaryMaxBytes);
  return patched.data === before && before !== undefined ? { contentType: resource.contentType as string, copyOf: stored } : binary;
}

/** patch: PATCH [type]/[id] with a JSON Patch document or a FHIRPath Patch. */
export async function patch(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  return patchResource(ctx, session, req, assertSupportedType(ctx, req.resourceType), assertId(req.id));
}

/** Conditional patch: PATCH [type]?criteria. */
export async function conditionalPatch(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = assertSupportedType(ctx, req.resourceType);
  const criteria = new URLSearchParams(req.query).toString();
  const matches = await findMatches(ctx, session, type, criteria, 2);
  if (matches.length === 0) throw new NotFound(`Conditional patch: no ${type} matches "${criteria}"`);
  if (matches.length > 1) throw new PreconditionFailed(`Conditional patch: "${criteria}" matches more than one ${type}`);
  return patchResource(ctx, session, req, type, matches[0].id);
}

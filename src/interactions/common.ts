import { DecimalTexts, stringifyWithDecimals } from '../json/decimals';
import { BadRequest, NotFound, PayloadTooLarge, PreconditionFailed, Unprocessable } from '../errors';
import { extractIndexRows } from '../search/extract';
import type { IndexRows } from '../search/indexRows';
import type { VersionWrite } from '../store/writeVersions';
import { isSubsetted } from '../access/referenceRedaction';
import { contentInMemory, readBinaryContent, readWholeContent } from '../store/binaryContent';
import type { Session } from '../store/session';
import type { DecodedBase64, FhirRequest, FhirResponse, InteractionContext } from './types';
import { mediaTypeProblem } from './binaryContentType';
import { decodeBase64 } from '../validation/primitives';
import { resolvableReferences } from '../integrity/references';
import { identifierClaims } from '../integrity/uniqueIdentifiers';
import { localTarget } from '../referenceString';

/** FHIR's id ([A-Za-z0-9-.]{1,64}), less ids made only of dots: `.` and `..` are path segments, never read back through a URL. */
export const ID_PATTERN = /^(?!\.+$)[A-Za-z0-9\-.]{1,64}$/;

export function assertSupportedType(ctx: InteractionContext, type: string | undefined): string {
  if (!type || !ctx.registry.isSupported(type)) throw new NotFound(`Resource type "${type}" is not supported by this server`);
  return type;
}

export function assertId(id: string | undefined): string {
  if (!id || !ID_PATTERN.test(id)) throw new BadRequest(`"${id}" is not a valid resource id ([A-Za-z0-9-.]{1,64}, not only dots)`);
  return id;
}

/** The JSON body of a create or update, checked for the few things every later step relies on. */
export function resourceBody(req: FhirRequest, expectedType: string): Record<string, unknown> {
  const body = req.body;
  if (body === undefined || body === null) throw new BadRequest(`A ${expectedType} resource is required in the request body`, 'required');
  if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('The request body must be a JSON object (a FHIR resource)', 'structure');
  const resource = body as Record<string, unknown>;
  if (typeof resource.resourceType !== 'string') throw new BadRequest('The resource has no resourceType', 'required', ['resourceType']);
  if (resource.resourceType !== expectedType) {
    throw new BadRequest(`The body is a ${String(resource.resourceType)} but the URL addresses ${expectedType}`, 'invalid', ['resourceType']);
  }
  if (resource.meta !== undefined && (typeof resource.meta !== 'object' || resource.meta === null || Array.isArray(resource.meta))) {
    throw new BadRequest('meta must be an object', 'structure', [`${expectedType}.meta`]);
  }
  // a subset a read gave (_summary, _elements, references withheld from its reader) would replace the complete version
  if (isSubsetted(resource)) {
    throw new BadRequest(`The ${expectedType} is tagged SUBSETTED: it is a part of a resource (an answer to _summary or _elements, or one shortened for its reader) and is not stored; send a complete resource, without the tag`, 'invalid', [`${expectedType}.meta.tag`]);
  }
  return resource;
}

export const etag = (versionId: number) => `W/"${versionId}"`;

/** The version number in an If-Match / ETag value: W/"3", "3" or 3. */
export function parseETag(value: string): number | undefined {
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(value.trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * Preconditions of a write (RFC 9110 §13.1): If-Match with version ETags or `*` (the
 * resource must exist), and If-None-Match: `*` (it must not: create only).
 */
export function checkIfMatch(req: FhirRequest, currentVersion: number | undefined, what: string): void {
  const header = req.headers['if-match'];
  if (header !== undefined) {
    const tags = header.split(',').map((t) => t.trim());
    if (tags.includes('*')) {
      if (currentVersion === undefined) throw new PreconditionFailed(`If-Match *: ${what} does not exist`);
    } else {
      const expected = tags.map(parseETag);
      if (expected.some((v) => v === undefined)) throw new BadRequest(`If-Match "${header}" is not a version ETag such as W/"1"`);
      if (currentVersion === undefined) throw new PreconditionFailed(`If-Match ${header}: ${what} does not exist`);
      if (!expected.includes(currentVersion)) throw new PreconditionFailed(`If-Match ${header} does not match the current version W/"${currentVersion}" of ${what}`);
    }
  }
  const noneMatch = req.headers['if-none-match'];
  if (noneMatch !== undefined && currentVersion !== undefined) {
    const tags = noneMatch.split(',').map((t) => t.trim());
    if (tags.includes('*') || tags.map(parseETag).includes(currentVersion)) {
      throw new PreconditionFailed(`If-None-Match ${noneMatch}: ${what} exists (version W/"${currentVersion}")`);
    }
  }
}

/**
 * The patient compartment of a resource: the Patient itself, or the first Patient
 * referenced through the Patient CompartmentDefinition's parameters for its type;
 * '' when it belongs to no patient (docs/decisions/001-compartment-keys.md).
 */
export function compartmentOf(ctx: InteractionContext, resourceType: string, id: string, index: IndexRows, resource: Record<string, unknown>): string {
  if (resourceType === 'Patient') return id;
  if (resourceType === 'Binary') {
    // the record is the Patient's however the reference spells it, version-specific included (decision 031), but only
    // a Patient of this server: one under another base URL is another server's, and no record here (decision 035)
    const target = localTarget(String((resource.securityContext as { reference?: unknown } | undefined)?.reference ?? ''), `${ctx.config.baseUrl}/`);
    return target?.resourceType === 'Patient' ? target.id : '';
  }
  const params = ctx.registry.types.get(resourceType)?.patientCompartmentParams ?? [];
  for (const param of params) {
    const row = index.reference.find((r) => r.param === param && r.targetType === 'Patient' && r.targetId);
    if (row) return row.targetId!;
  }
  return '';
}

export const nowInstant = () => new Date().toISOString();

/** `Type/id` of the local references of a stored version. */
function localTargets(ctx: InteractionContext, body: Record<string, unknown>): Set<string> {
  const out = new Set<string>();
  for (const r of resolvableReferences(body, ctx.config.baseUrl + '/')) if (r.kind === 'local') out.add(`${r.targetType}/${r.targetId}`);
  return out;
}

/** The targets a new version may keep from the one it replaces: not those the writer named without being shown them. */
function keptTargets(ctx: InteractionContext, previous: Record<string, unknown>, resourceType: string, guessed: unknown[] = []): Set<string> {
  const kept = localTargets(ctx, previous);
  if (guessed.length) for (const k of localTargets(ctx, { resourceType, guessed })) kept.delete(k);
  return kept;
}

/** Stamps meta, extracts the index rows and computes the compartment of a new version. */
export function newVersion(
  ctx: InteractionContext,
  resource: Record<string, unknown>,
  options: {
    id: string;
    versionId: number;
    lastUpdated: string;
    method: VersionWrite['method'];
    previousCompartment?: string;
    previousBody?: VersionWrite['previousBody'];
    /** Items the writer named among those they were not shown: their targets are checked as new references. */
    guessed?: unknown[];
    idDrawnByServer?: boolean;
    binary?: VersionWrite['binary'];
    decimals?: DecimalTexts;
  },
): VersionWrite {
  const resourceType = String(resource.resourceType);
  const meta = { ...((resource.meta as Record<string, unknown>) ?? {}), versionId: String(options.versionId), lastUpdated: options.lastUpdated };
  const { id: _ignored, meta: _meta, resourceType: _type, ...rest } = resource;
  const body: Record<string, unknown> = { resourceType, id: options.id, meta, ...rest };
  const index = extractIndexRows(body, ctx.registry.searchParameters, { baseUrl: ctx.config.baseUrl + '/' });
  return {
    compartment: compartmentOf(ctx, resourceType, options.id, index, body),
    resourceType,
    id: options.id,
    versionId: options.versionId,
    lastUpdated: options.lastUpdated,
    deleted: false,
    method: options.method,
    body,
    // decimals keep the precision they were sent with (paths are the same: only top-level keys moved)
    bodyText: stringifyWithDecimals(body, options.decimals),
    index,
    previousCompartment: options.previousCompartment,
    ...(options.previousBody !== undefined ? { previousBody: options.previousBody } : {}),
    ...(options.idDrawnByServer ? { idDrawnByServer: true } : {}),
    binary: options.binary,
    references: resolvableReferences(body, ctx.config.baseUrl + '/'),
    ...(options.previousBody ? { keptReferences: keptTargets(ctx, options.previousBody, resourceType, options.guessed) } : {}),
    claims: identifierClaims(body),
  };
}

/**
 * The body of a row read by an interaction, for the policy to decide the write that
 * replaces it: null for a deletion, undefined when the row was read without its body.
 */
export function bodyOfRow(row: { deleted: boolean; body: string | null }): VersionWrite['previousBody'] {
  if (row.deleted) return null;
  return row.body !== null ? (JSON.parse(row.body) as Record<string, unknown>) : undefined;
}

/**
 * The representation of a version just written, as a read would answer it: a Binary
 * carries its content (raw for a client that takes it, base64 `data` in FHIR JSON).
 */
export async function writtenRepresentation(session: Session, version: VersionWrite, prefer: FhirRequest['prefer']): Promise<Pick<FhirResponse, 'resource' | 'resourceText' | 'binary'>> {
  const plain = { resource: version.body as Record<string, unknown>, resourceText: version.bodyText! };
  // content is only read back when the answer will carry it
  if (!version.binary || prefer.return === 'minimal' || prefer.return === 'OperationOutcome') return plain;
  // raw bytes uploaded are not sent back unless asked for: the client has them, and a large
  // document would cross the network twice (the answer is the Binary without its data)
  if (!('data' in version.binary) && prefer.return !== 'representation') return plain;
  if ('data' in version.binary) return { ...plain, binary: contentInMemory(version.binary.contentType, version.binary.data) };
  // an upload: sent from its spool file, never held whole
  if ('stream' in version.binary) return { ...plain, binary: await version.binary.stream.content(version.binary.contentType) };
  // content kept from an earlier version: read back while the write's transaction is open (its statements end with it), held once
  const content = await readBinaryContent(session, version.compartment, version.id, version.versionId);
  if (!content) return plain;
  return { ...plain, binary: contentInMemory(content.contentType, await readWholeContent(content)) };
}

/**
 * An answer that carries a Binary's content as base64 `data` in its resource, read whole:
 * for a Bundle entry, whose statements end with its transaction. Other answers are left alone.
 */
export async function withBinaryData(res: FhirResponse): Promise<FhirResponse> {
  if (!res.binary) return res;
  const resource = res.resource ?? (res.resourceText !== undefined ? (JSON.parse(res.resourceText) as Record<string, unknown>) : undefined);
  if (!resource || resource.resourceType !== 'Binary') return res;
  const data = await readWholeContent(res.binary);
  const { binary: _content, resourceText: _text, ...rest } = res;
  // no content, no member: an empty string is not a FHIR primitive value
  return { ...rest, resource: data.length ? { ...resource, data: data.toString('base64') } : resource };
}

export function deletionVersion(resourceType: string, id: string, compartment: string, versionId: number, lastUpdated: string, previousBody?: VersionWrite['previousBody']): VersionWrite {
  return {
    compartment,
    resourceType,
    id,
    versionId,
    lastUpdated,
    deleted: true,
    method: 'DELETE',
    body: null,
    bodyText: null,
    index: null,
    previousCompartment: compartment,
    ...(previousBody !== undefined ? { previousBody } : {}),
  };
}

/** A fullUrl or reference as compared within a Bundle: urn:uuid values compare without case (RFC 4122). */
export const fullUrlKey = (url: string): string => (/^urn:uuid:/i.test(url) ? url.toLowerCase() : url);

/**
 * The bytes of a base64Binary value (whitespace ignored); undefined when it is not one: not
 * a string, empty (no FHIR primitive is), or not base64 padded to whole quanta as R4's
 * pattern requires (`SGk` would otherwise be read as two bytes and `A` as none).
 */
export function base64Bytes(data: unknown): Buffer | undefined {
  if (typeof data !== 'string' || data === '') return undefined;
  const decoded = decodeBase64(data);
  return decoded?.padded ? decoded.bytes : undefined;
}

/** Binary content posted as FHIR JSON (data in base64) is stored apart like raw content. */
export function splitBinaryData(resource: Record<string, unknown>, maxBytes: number, decoded?: DecodedBase64): { resource: Record<string, unknown>; binary?: VersionWrite['binary'] } {
  if (resource.resourceType !== 'Binary') return { resource };
  const { data, ...rest } = resource;
  if (typeof rest.contentType !== 'string' || rest.contentType === '') throw new BadRequest('Binary.contentType is required', 'required', ['Binary.contentType']);
  const problem = mediaTypeProblem(rest.contentType);
  if (problem) throw new Unprocessable([{ severity: 'error', code: 'value', diagnostics: `Binary.contentType ${problem}`, expression: ['Binary.contentType'] }]);
  if (data === undefined) return { resource: rest, binary: { contentType: rest.contentType, data: Buffer.alloc(0) } };
  const bytes = decoded && decoded.text === data ? decoded.bytes : base64Bytes(data);
  if (!bytes) throw new BadRequest('Binary.data must be base64', 'invalid', ['Binary.data']);
  // the limit is on the content, whichever way it comes (raw, FHIR JSON, a transaction entry)
  if (bytes.length > maxBytes) throw new PayloadTooLarge(`Binary.data (${bytes.length} bytes) exceeds the limit of ${maxBytes} bytes`);
  return { resource: rest, binary: { contentType: rest.contentType, data: bytes } };
}

/** The resource of a request: JSON body, or a Binary made from raw content and X-Security-Context. */
export function requestResource(ctx: InteractionContext, req: FhirRequest, type: string): { resource: Record<string, unknown>; binary?: VersionWrite['binary'] } {
  if (type === 'Binary' && req.rawBody) {
    const securityContext = req.headers['x-security-context'];
    const resource: Record<string, unknown> = { resourceType: 'Binary', contentType: req.rawBody.contentType };
    if (securityContext) resource.securityContext = { reference: securityContext };
    return { resource, binary: req.rawBody };
  }
  return splitBinaryData(resourceBody(req, type), ctx.config.binaryMaxBytes, req.decodedData);
}

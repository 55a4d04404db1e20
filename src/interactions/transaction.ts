import crypto from 'node:crypto';
import { carryRefusal } from '../audit/refusal';
import { RawJson } from '../json/rawJson';
import { decimalTextsUnder } from '../json/decimals';
import { BadRequest, dataException, FhirError, Issue, operationOutcome, PayloadTooLarge, PreconditionFailed, Unprocessable } from '../errors';
import type { Session } from '../store/session';
import { base64Bytes, etag, fullUrlKey, withBinaryData } from './common';
import { create, ifNoneExistMatch } from './create';
import { perform, route, Route } from './dispatch';
import { collectConditionalReferences, referencesOf, resolveConditionalReferences } from './conditionalReferences';
import { findMatches } from './search';
import type { DecodedBase64, FhirRequest, FhirResponse, InteractionContext } from './types';
import { inTransaction, withoutTransaction } from './unitOfWork';
import { assertFolderDocumentsInRecord, assertNotSubmittedBefore, isMhdSubmission, prepareSubmission, submissionProfile, submissionRecords, submissionUniqueIds, withXdsCodes } from './documentSubmission';
import type { StoreAccess } from '../store/session';
import { jsonLimits, readJson } from '../json/jsonReader';

interface BundleEntry {
  fullUrl?: string;
  resource?: Record<string, unknown>;
  request?: { method?: string; url?: string; ifNoneMatch?: string; ifModifiedSince?: string; ifMatch?: string; ifNoneExist?: string };
}

interface PreparedEntry {
  index: number;
  entry: BundleEntry;
  method: FhirRequest['method'];
  route: Route;
  req: FhirRequest;
}

const ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };
const STATUS_TEXT: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified' };

/** An expression about the entry's resource (`DocumentReference.content[0]`), made one about the Bundle (`Bundle.entry[2].resource.content[0]`). */
function inBundle(index: number, expression: string): string {
  const m = /^[A-Z][A-Za-z]*(?=\.|$)/.exec(expression);
  return m && !expression.startsWith('Bundle.entry') ? `Bundle.entry[${index}].resource${expression.slice(m[0].length)}` : expression;
}

/** An issue about an entry's resource, made one about the Bundle's entry. */
function inEntry(index: number, i: Issue): Issue {
  return { ...i, diagnostics: `Bundle.entry[${index}]: ${i.diagnostics}`, ...(i.expression ? { expression: i.expression.map((x) => inBundle(index, x)) } : {}) };
}

function entryError(index: number, e: unknown): never {
  if (e instanceof FhirError) {
    const issues = e.issues.map((i) => inEntry(index, i));
    // what a refusal was about stays with it, for the audit trail
    throw carryRefusal(e, new FhirError(e.status, issues, e.headers));
  }
  throw e;
}

/** Parses one entry's request into the same FhirRequest a single HTTP call would produce. */
function prepare(ctx: InteractionContext, entry: BundleEntry, index: number, outer: FhirRequest): PreparedEntry {
  const request = entry.request;
  if (!request || typeof request.method !== 'string' || typeof request.url !== 'string') {
    throw new BadRequest(`Bundle.entry[${index}].request with method and url is required`, 'required', [`Bundle.entry[${index}].request`]);
  }
  const method = request.method.toUpperCase() as FhirRequest['method'];
  if (!(method in ORDER)) throw new BadRequest(`Bundle.entry[${index}].request.method "${request.method}" is not supported`);
  let url = request.url;
  if (url.startsWith(ctx.config.baseUrl + '/')) url = url.slice(ctx.config.baseUrl.length + 1);
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? [] : ([...new URLSearchParams(url.slice(q + 1))] as [string, string][]);
  const segments = path.split('/').filter(Boolean);
  const r = route(method, segments);
  if (r.interaction === 'transaction') throw new BadRequest(`Bundle.entry[${index}]: nested transactions are not supported`);
  let body: unknown = entry.resource;
  // PATCH in a Bundle: a Binary carrying the JSON Patch document.
  if (method === 'PATCH' && entry.resource?.resourceType === 'Binary' && typeof entry.resource.data === 'string') {
    // read with the same limits and refusals (duplicate names, prototype keys) as a request body
    const limits = jsonLimits(ctx.config);
    try {
      const patchBytes = base64Bytes(entry.resource.data);
      if (!patchBytes) throw new BadRequest('Binary.data must be base64', 'invalid', [`Bundle.entry[${index}].resource.data`]);
      body = readJson(patchBytes.toString('utf8'), limits).value;
    } catch (e) {
      if (e instanceof FhirError) throw new FhirError(e.status, e.issues.map((i) => ({ ...i, diagnostics: `Bundle.entry[${index}]: the JSON Patch in Binary.data: ${i.diagnostics}` })));
      throw e;
    }
  }
  const req: FhirRequest = {
    method,
    resourceType: r.resourceType,
    id: r.id,
    versionId: r.versionId,
    query,
    headers: {
      'if-match': request.ifMatch,
      'if-none-match': request.ifNoneMatch,
      'if-modified-since': request.ifModifiedSince,
      'if-none-exist': request.ifNoneExist,
    },
    body,
    prefer: outer.prefer,
    decimals: decimalTextsUnder(outer.decimals, `/entry/${index}/resource`),
  };
  return { index, entry, method, route: r, req };
}

/**
 * An entry's answer with its Binary's content as base64 `data`, read while the entry's
 * transaction is open: for a read, or a write whose client asks for the representation. A
 * Binary an entry writes is otherwise answered without its content, as a raw upload is: the
 * client sent those bytes, and an MHD submission would receive each document back whole.
 */
async function entryBinaryData(res: FhirResponse, method: string, prefer: FhirRequest['prefer']): Promise<FhirResponse> {
  if (!res.binary) return res;
  if (method === 'GET' || method === 'HEAD' || prefer.return === 'representation') return withBinaryData(res);
  const { binary: _content, ...rest } = res;
  return rest;
}

function responseEntry(ctx: InteractionContext, res: FhirResponse, prefer: FhirRequest['prefer'], method: string): Record<string, unknown> {
  const response: Record<string, unknown> = { status: `${res.status} ${STATUS_TEXT[res.status] ?? ''}`.trim() };
  if (res.location) response.location = res.location;
  if (res.versionId !== undefined) response.etag = etag(res.versionId);
  if (res.lastModified) response.lastModified = res.lastModified.toISOString();
  const out: Record<string, unknown> = {};
  if (res.location) out.fullUrl = `${ctx.config.baseUrl}/${res.location.replace(/\/_history\/.*$/, '')}`;
  // Prefer return=minimal|OperationOutcome is about writes: a read or search entry always carries its result
  const write = method !== 'GET' && method !== 'HEAD';
  if (res.resource?.resourceType === 'OperationOutcome') response.outcome = res.resource;
  else if (write && prefer.return === 'OperationOutcome') {
    response.outcome = operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `${method} succeeded${res.location ? `: ${res.location}` : ''}` }]);
  } else if (!write || prefer.return !== 'minimal') {
    // the text the entry's interaction already made is spliced in, not parsed and serialised again
    if (res.resourceText !== undefined) out.resource = new RawJson(res.resourceText);
    else if (res.resource) out.resource = res.resource;
  }
  out.response = response;
  return out;
}

/**
 * Elements whose value is a link that a resolved fullUrl replaces (http.html#trules:
 * references, elements of type uri/url/canonical/oid/uuid, narrative links). A string
 * element that happens to hold the same text — an Identifier.value carrying the
 * document's entryUUID, a description — is data and stays as sent.
 */
const LINK_KEYS = new Set([
  'reference',
  'url',
  'valueUri',
  'valueUrl',
  'valueCanonical',
  'valueOid',
  'valueUuid',
  // canonical and uri elements that point at another resource
  'questionnaire',
  'instantiatesCanonical',
  'instantiatesUri',
  'policy',
  'profile',
  'definition',
  'source',
]);
const NARRATIVE_LINK = /\b(href|src)="([^"]*)"/g;
const PLACEHOLDER_REFERENCE = /^urn:(uuid|oid):/;

/**
 * Rewrites the links equal to a resolved fullUrl or conditional reference. It copies rather
 * than edits in place: a transaction retried after a serialisation failure starts again
 * from the bodies as received, with fresh ids and fresh matches. A reference left as a
 * urn:uuid / urn:oid placeholder resolves to nothing and is reported in `unresolved`.
 */
function rewriteReferences(value: unknown, resolved: Map<string, string>, unresolved: Set<string>, key?: string): unknown {
  if (typeof value === 'string') {
    if (key === 'div') return value.replace(NARRATIVE_LINK, (m, attr: string, link: string) => (resolved.has(link) ? `${attr}="${resolved.get(link)}"` : m));
    if (key === undefined || !LINK_KEYS.has(key)) return value;
    const target = resolved.get(value);
    if (target !== undefined) return target;
    if (PLACEHOLDER_REFERENCE.test(value)) unresolved.add(value);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => rewriteReferences(v, resolved, unresolved, key));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = rewriteReferences(v, resolved, unresolved, k);
    return out;
  }
  return value;
}

/** What the pipeline does around each entry, as around a lone request: audit it (docs/decisions/009-audit.md). */
export interface EntryAuditor {
  /** The entry ran on `session`: its events go out with the entry's writes. */
  performed(session: Session, route: Route, req: FhirRequest): Promise<void>;
  /** A batch entry failed on its own: a refusal is audited in a statement of its own. */
  failed(route: Route, req: FhirRequest, error: unknown): Promise<void>;
}

/**
 * The validation errors of entries not yet run, each named on its entry: an MHD submission
 * refused for one invalid entry names every invalid one in the same outcome (ITI-65), so a
 * submitter mends them all at once. Only the checks that need nothing written are run.
 */
async function invalidEntries(ctx: InteractionContext, session: Session, rest: PreparedEntry[], resolved: Map<string, string>): Promise<Issue[]> {
  if (!ctx.validator) return [];
  const issues: Issue[] = [];
  for (const p of rest) {
    if (p.method !== 'POST' && p.method !== 'PUT') continue;
    const body = p.req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || body.resourceType === 'Bundle') continue;
    const resource = rewriteReferences(body, resolved, new Set()) as Record<string, unknown>;
    const profile = p.req.submission ? await submissionProfile(ctx, session, resource, p.req.submission) : undefined;
    const errors = ctx.validator
      .validate(resource, { mode: p.method === 'POST' ? 'create' : 'update', ...(profile ? { profiles: [profile] } : {}) })
      .filter((i) => i.severity === 'error' || i.severity === 'fatal');
    for (const i of errors) issues.push(inEntry(p.index, i));
  }
  return issues;
}

async function runTransaction(
  ctx: InteractionContext,
  session: Session,
  entries: PreparedEntry[],
  outer: FhirRequest,
  auditor?: EntryAuditor,
  { everyInvalidEntry = false }: { everyInvalidEntry?: boolean } = {},
): Promise<Record<string, unknown>[]> {
  const seen = new Set<string>();
  for (const p of entries) {
    if (p.route.id && (p.method === 'PUT' || p.method === 'PATCH' || p.method === 'DELETE')) {
      const key = `${p.route.resourceType}/${p.route.id}`;
      if (seen.has(key)) throw new BadRequest(`Bundle.entry[${p.index}]: ${key} appears in more than one entry of the transaction`);
      seen.add(key);
    }
  }

  const results = new Array<Record<string, unknown>>(entries.length);
  const run = async (p: PreparedEntry, req: FhirRequest, assignedId?: string | { existing: string }) => {
    let res: FhirResponse;
    // a check the entry leaves for before commit names the entry when it refuses, as the entry's own refusals do
    session.commitCheckScope = (check) => () => check().catch((e) => entryError(p.index, e));
    try {
      if (assignedId !== undefined && typeof assignedId !== 'string') {
        res = await perform(ctx, session, { interaction: 'read', resourceType: p.route.resourceType, id: assignedId.existing }, { ...req, method: 'GET', id: assignedId.existing, headers: {} });
      } else if (assignedId !== undefined) {
        res = await create(ctx, session, { ...req, headers: { ...req.headers, 'if-none-exist': undefined } }, assignedId);
      } else {
        // the entry meets its records' decision as its lone request would (docs/decisions/031-refusal-consistency.md)
        await session.access.checkEntryRecords?.(session, p.route, req);
        res = await perform(ctx, session, p.route, req);
      }
      // an entry's Binary content is read while its transaction is open
      res = await entryBinaryData(res, p.method, outer.prefer);
    } catch (e) {
      entryError(p.index, e);
    } finally {
      session.commitCheckScope = undefined;
    }
    await auditor?.performed(session, p.route, req);
    results[p.index] = responseEntry(ctx, res, outer.prefer, p.method);
  };

  // DELETEs first: conditional creates and references below must not see what they remove.
  for (const p of entries) if (p.method === 'DELETE') await run(p, p.req);

  // Then identities: each POST gets its id (or its match for If-None-Exist), each urn:uuid fullUrl its Type/id.
  const resolved = new Map<string, string>();
  const assigned = new Map<number, string | { existing: string }>();
  for (const p of entries) {
    if (p.method === 'POST' && p.route.interaction === 'create') {
      const type = p.route.resourceType!;
      let id: string | { existing: string } = crypto.randomUUID();
      const ifNoneExist = p.req.headers['if-none-exist'];
      if (ifNoneExist) {
        const match = await ifNoneExistMatch(ctx, session, type, ifNoneExist).catch((e) => entryError(p.index, e));
        if (match) id = { existing: match.id };
      }
      assigned.set(p.index, id);
      if (p.entry.fullUrl) resolved.set(p.entry.fullUrl, `${type}/${typeof id === 'string' ? id : id.existing}`);
    } else if (p.method === 'PUT' && p.route.id && p.entry.fullUrl?.startsWith('urn:')) {
      resolved.set(p.entry.fullUrl, `${p.route.resourceType}/${p.route.id}`);
    } else if (p.method === 'PUT' && p.route.interaction === 'conditional-update' && p.entry.fullUrl?.startsWith('urn:')) {
      // a conditional update names its resource by criteria: the match, or the id it will create
      const type = p.route.resourceType!;
      const criteria = new URLSearchParams(p.req.query).toString();
      const matches = await findMatches(ctx, session, type, criteria, 2).catch((e) => entryError(p.index, e));
      if (matches.length > 1) entryError(p.index, new PreconditionFailed(`Conditional update: "${criteria}" matches more than one ${type}`));
      const body = p.req.body as Record<string, unknown> | undefined;
      const id = matches[0]?.id ?? (typeof body?.id === 'string' ? body.id : crypto.randomUUID());
      if (!matches[0] && body && body.id === undefined) p.req.drawnId = id;
      resolved.set(p.entry.fullUrl, `${type}/${id}`);
    }
  }
  // entries may reference what later entries write (docs/decisions/014-integrity.md)
  session.willWrite([...resolved.values()]);
  for (const p of entries) if (p.method === 'PUT' && p.route.interaction === 'update' && p.route.id) session.willWrite([`${p.route.resourceType}/${p.route.id}`]);
  const conditional = new Set<string>();
  for (const p of entries) collectConditionalReferences(p.req.body, conditional);
  await resolveConditionalReferences(ctx, session, conditional, resolved);

  const ordered = entries.filter((p) => p.method !== 'DELETE').sort((x, y) => ORDER[x.method] - ORDER[y.method] || x.index - y.index);
  for (const [n, p] of ordered.entries()) {
    let req = p.req;
    // a Bundle stored as an entry (a FHIR document, MHD) is self-contained: its references are to its own entries
    const storesBundle = (p.req.body as { resourceType?: unknown } | undefined)?.resourceType === 'Bundle';
    if (p.req.body !== undefined && !storesBundle) {
      const unresolved = new Set<string>();
      req = { ...p.req, body: rewriteReferences(p.req.body, resolved, unresolved) };
      if (unresolved.size > 0) {
        throw new BadRequest(`Bundle.entry[${p.index}]: reference "${[...unresolved][0]}" matches no fullUrl of the Bundle`, 'invalid', [`Bundle.entry[${p.index}].resource`]);
      }
    }
    // the Bundle's conditional references were resolved above, with the same matches for every entry
    try {
      await run(p, { ...req, referencesResolved: true }, assigned.get(p.index));
    } catch (e) {
      if (!everyInvalidEntry || !(e instanceof FhirError) || e.status !== 422) throw e;
      const more = await invalidEntries(ctx, session, ordered.slice(n + 1), resolved);
      throw more.length ? carryRefusal(e, new Unprocessable([...e.issues, ...more])) : e;
    }
  }
  return results;
}

/** transaction and batch: POST [base] with a Bundle. */
export async function transactionOrBatch(ctx: InteractionContext, access: StoreAccess, req: FhirRequest, auditor?: EntryAuditor): Promise<FhirResponse> {
  const bundle = req.body as { resourceType?: string; type?: string; entry?: BundleEntry[] } | undefined;
  if (!bundle || typeof bundle !== 'object' || bundle.resourceType !== 'Bundle') {
    throw new BadRequest('POST to the base URL takes a Bundle of type transaction or batch', 'invalid', ['Bundle']);
  }
  if (bundle.type !== 'transaction' && bundle.type !== 'batch') {
    throw new BadRequest(`Bundle.type must be transaction or batch, got "${bundle.type}"`, 'invalid', ['Bundle.type']);
  }
  const entries = bundle.entry ?? [];
  if (!Array.isArray(entries)) throw new BadRequest('Bundle.entry must be an array', 'structure', ['Bundle.entry']);
  // every entry is a request of its own, and a transaction holds its connection (the only one, embedded) until the last
  if (entries.length > ctx.config.bundleMaxEntries) {
    throw new PayloadTooLarge(`The ${bundle.type} has ${entries.length} entries; at most ${ctx.config.bundleMaxEntries} are accepted (BUNDLE_MAX_ENTRIES): split it`);
  }
  // bdl-7: a fullUrl names one entry, or a reference to it would be ambiguous
  const fullUrls = new Map<string, number>();
  entries.forEach((e, i) => {
    const fullUrl = typeof e?.fullUrl === 'string' ? fullUrlKey(e.fullUrl) : e?.fullUrl;
    if (typeof fullUrl !== 'string') return;
    if (fullUrls.has(fullUrl)) throw new BadRequest(`Bundle.entry[${i}].fullUrl "${fullUrl}" is also the fullUrl of Bundle.entry[${fullUrls.get(fullUrl)}] (bdl-7)`, 'invalid', [`Bundle.entry[${i}].fullUrl`]);
    fullUrls.set(fullUrl, i);
  });

  if (bundle.type === 'transaction') {
    // an MHD Provide Document Bundle (ITI-65): checked whole first, its content measured (docs/decisions/015-document-submissions.md)
    const mhd = isMhdSubmission(bundle);
    // a submission is refused for its record before anything of its content is looked at (docs/decisions/031-refusal-consistency.md)
    const named = mhd ? submissionRecords(entries, ctx.config.baseUrl) : [];
    if (named.length > 0 && access.checkRecordsWritable) await withoutTransaction(ctx, access, (s) => access.checkRecordsWritable!(s, named));
    const decoded = new Map<number, DecodedBase64>();
    const submitted = mhd ? (prepareSubmission(bundle as Parameters<typeof prepareSubmission>[0], ctx.config.baseUrl, decoded).entry as BundleEntry[]) : entries;
    const prepared = submitted.map((e, i) => prepare(ctx, e, i, req));
    // a Binary's content measured above is not decoded again by its create
    for (const p of prepared) if (decoded.has(p.index)) p.req.decodedData = decoded.get(p.index);
    const uniqueIds = mhd ? submissionUniqueIds(submitted) : [];
    if (mhd) {
      // the server supersedes each replaced document but those the Bundle changes itself
      const changedByBundle = new Set(prepared.filter((p) => p.route.id && p.method !== 'POST' && p.method !== 'GET' && p.method !== 'HEAD').map((p) => `${p.route.resourceType}/${p.route.id}`));
      for (const p of prepared) if (p.method === 'POST' && p.route.resourceType === 'DocumentReference') p.req.replacement = { changedByBundle };
      // and holds its entries to the PDSm profiles when its patient is a national record (docs/decisions/029-dmp-submissions.md)
      const submission = { records: new Map() };
      // whether an entry creates or changes: a PUT is no way out of them
      for (const p of prepared) if ((p.method === 'POST' || p.method === 'PUT') && (p.route.resourceType === 'DocumentReference' || p.route.resourceType === 'List')) p.req.submission = submission;
    }
    const results = await inTransaction(
      ctx,
      access,
      async (session) => {
        await assertNotSubmittedBefore(ctx, session, uniqueIds);
        if (mhd) await assertFolderDocumentsInRecord(session, submitted);
        return runTransaction(ctx, session, prepared, req, auditor, { everyInvalidEntry: mhd });
      },
      { deferWrites: true },
    ).catch((e) => {
      // a refused submission says why in the XDS codes MHD asks for (docs/decisions/029-dmp-submissions.md)
      throw mhd ? withXdsCodes(e) : e;
    });
    return { status: 200, resource: { resourceType: 'Bundle', type: 'transaction-response', entry: results } };
  }

  const results: Record<string, unknown>[] = [];
  for (let i = 0; i < entries.length; i++) {
    let p: PreparedEntry | undefined;
    try {
      // batch entries are independent (http.html#transaction): one cannot refer to another
      const dependency = referencesOf(entries[i]?.resource)
        .map(fullUrlKey)
        .find((r) => r.startsWith('urn:') && fullUrls.has(r) && fullUrls.get(r) !== i);
      if (dependency) throw new BadRequest(`Bundle.entry[${i}]: reference "${dependency}" is the fullUrl of another entry; batch entries cannot depend on each other (use a transaction)`, 'invalid', [`Bundle.entry[${i}].resource`]);
      const entry = (p = prepare(ctx, entries[i], i, req));
      const res = await inTransaction(
        ctx,
        access,
        async (session) => {
          await session.access.checkEntryRecords?.(session, entry.route, entry.req);
          const out = await entryBinaryData(await perform(ctx, session, entry.route, entry.req), entry.method, req.prefer);
          await auditor?.performed(session, entry.route, entry.req);
          return out;
        },
        { deferWrites: true },
      );
      results.push(responseEntry(ctx, res, req.prefer, entry.method));
    } catch (e) {
      if (p) await auditor?.failed(p.route, p.req, e);
      // a value the database refuses is this entry's error, like any other bad request
      const error = e instanceof FhirError ? e : dataException(e);
      if (!error) throw e;
      results.push({ response: { status: String(error.status), outcome: operationOutcome(error.issues) } });
    }
  }
  return { status: 200, resource: { resourceType: 'Bundle', type: 'batch-response', entry: results } };
}


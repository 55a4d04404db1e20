import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { Request, Response } from 'express';
import { etag, withBinaryData } from '../interactions/common';
import { linksWithRepresentation } from '../interactions/bundlePage';
import { route, Route, WRITES } from '../interactions/dispatch';
import { runRequest } from '../pipeline/pipeline';
import { authenticate } from '../pipeline/authenticate';
import { applySubsetting, entryResource } from '../interactions/subsetting';
import type { FhirRequest, FhirResponse, InteractionContext, Prefer } from '../interactions/types';
import { BadRequest, dataException, FhirError, Issue, operationOutcome, RangeNotSatisfiable } from '../errors';
import { assertFhirAcceptable, binaryAsContent, bodyKind, negotiate, Negotiated, FHIR_JSON, FHIR_XML, FhirFormat } from './negotiation';
import { byteRange, rangeStillValid } from './byteRange';
import { readXml } from '../xml/readXml';
import { jsonTextToXml, resourceToXml } from '../xml/convert';
import { readBody, spoolBody } from './readBody';
import { BinaryStream, StoredContent } from '../store/binaryContent';
import { binaryJsonPieces, writePieces } from './sendContent';
import { stringifyJson } from '../json/rawJson';
import { jsonLimits, readJson } from '../json/jsonReader';
import { binaryHeaders, setEveryAnswerHeaders } from './responseHeaders';
import { elementNames } from '../search/parseSearch';
import { strictElementsRefusal } from '../search/elementsParameter';
import { QUERY_CANCELED } from '../store/cancellation';
import { TLSSocket } from 'node:tls';
import { cors } from './cors';
import { serveSmartConfiguration } from './smartConfiguration';

function parsePrefer(header: string | undefined): Prefer {
  const prefer: Prefer = {};
  if (!header) return prefer;
  for (const part of header.split(/[,;]/)) {
    const [k, v] = part.split('=').map((s) => s?.trim().replace(/^"|"$/g, ''));
    if (k === 'return' && (v === 'minimal' || v === 'representation' || v === 'OperationOutcome')) prefer.return = v;
    if (k === 'handling' && (v === 'strict' || v === 'lenient')) prefer.handling = v;
  }
  return prefer;
}

function lowerHeaders(req: Request): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** Characters PostgreSQL text cannot hold and FHIR strings should not: NUL, and halves of surrogate pairs. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function assertStorable(value: unknown, where: string): void {
  if (typeof value === 'string') {
    if (UNSTORABLE.test(value)) throw new BadRequest(`${where} holds a NUL character or an unpaired surrogate, which a FHIR string cannot hold`, 'invalid');
  } else if (Array.isArray(value)) value.forEach((v) => assertStorable(v, where));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) assertStorable(k, where), assertStorable(v, where);
}

/** Reads and classifies the body: FHIR JSON, JSON Patch, a form (POST _search) or raw Binary content. */
async function parseBody(ctx: InteractionContext, req: Request, r: Route, fhir: FhirRequest): Promise<void> {
  const method = req.method;
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') return;
  const encoding = req.headers['content-encoding'];
  if (encoding && encoding.trim().toLowerCase() !== 'identity') {
    throw new FhirError(415, [{ severity: 'error', code: 'not-supported', diagnostics: `Content-Encoding ${encoding} is not supported: send the body uncompressed` }]);
  }
  const binaryWrite = r.resourceType === 'Binary' && (r.interaction === 'create' || r.interaction === 'update');
  const contentType = req.headers['content-type'];
  // Binary content in FHIR JSON is base64: its limit applies to the decoded bytes (checked when they are decoded)
  const limit = binaryWrite ? Math.max(ctx.config.jsonMaxBytes, Math.ceil((ctx.config.binaryMaxBytes * 4) / 3) + 65536) : ctx.config.jsonMaxBytes;
  const kind = contentType ? bodyKind(contentType, binaryWrite) : undefined;
  if (kind === 'raw') {
    // raw Binary content goes to a temporary file, then into the database in chunks
    const spooled = await spoolBody(req, ctx.config);
    req.res?.on('close', spooled.remove);
    if (spooled.size === 0) throw new BadRequest(`${method} requires a body`, 'required');
    fhir.rawBody = { contentType: contentType!.trim(), stream: new BinaryStream(spooled.file) };
    return;
  }
  const data = await readBody(req, limit);
  if (data.length === 0) {
    // an operation without input parameters may be posted without a body ($close)
    if (r.interaction === 'search-type' || r.interaction === 'operation') return;
    throw new BadRequest(`${method} requires a body`, 'required');
  }
  if (kind === undefined) throw new BadRequest('The request has a body but no Content-Type: send application/fhir+json', 'required');
  // FHIR bodies are UTF-8 (http.html#mime-type): another charset is refused, invalid bytes are not replaced
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
  if (charset && charset !== 'utf-8' && charset !== 'utf8') {
    throw new FhirError(415, [{ severity: 'error', code: 'not-supported', diagnostics: `charset ${charset} is not supported: FHIR bodies are UTF-8` }]);
  }
  let text: string;
  try {
    text = UTF8.decode(data);
  } catch {
    throw new BadRequest('The body is not valid UTF-8', 'structure');
  }
  if (kind === 'form') {
    if (r.interaction !== 'search-type') throw new BadRequest('A form body is only accepted by POST [type]/_search', 'not-supported');
    if (text.includes('%')) assertQueryEncoding(text);
    const pairs = [...new URLSearchParams(text)] as [string, string][];
    assertStorable(pairs, 'A search parameter');
    fhir.query.push(...pairs);
    return;
  }
  if (r.interaction === 'search-type') throw new BadRequest('POST _search takes application/x-www-form-urlencoded parameters');
  const limits = jsonLimits(ctx.config);
  if (kind === 'xml') {
    // converted at the edge into the value FHIR JSON gives: the rest of the server sees JSON
    const read = readXml(text, limits);
    fhir.body = read.value;
    fhir.decimals = read.decimals;
    if (method === 'PATCH' && (fhir.body as { resourceType?: unknown }).resourceType !== 'Parameters') {
      throw new BadRequest('A PATCH in application/fhir+xml is a FHIRPath Patch: a Parameters resource. A JSON Patch document goes as application/json-patch+json', 'structure');
    }
    return;
  }
  if (kind === 'json-patch' && method !== 'PATCH') {
    throw new FhirError(415, [{ severity: 'error', code: 'not-supported', diagnostics: 'application/json-patch+json is only accepted by PATCH' }]);
  }
  if (method === 'PATCH' && kind !== 'json-patch' && kind !== 'json' && kind !== 'xml') {
    throw new FhirError(415, [
      { severity: 'error', code: 'not-supported', diagnostics: 'PATCH takes a JSON Patch document (application/json-patch+json) or a FHIRPath Patch Parameters resource (application/fhir+json)' },
    ]);
  }
  // not JSON.parse: limits on depth and size, no duplicated or prototype-reaching member names,
  // no NUL or lone surrogate; decimals noted as sent
  const json = readJson(text, limits);
  fhir.body = json.value;
  fhir.decimals = json.decimals;
  if (method === 'PATCH') {
    // the content type says which patch format the body is
    const isParameters = (fhir.body as { resourceType?: unknown } | null)?.resourceType === 'Parameters';
    if (kind === 'json' && !isParameters) {
      throw new BadRequest('A PATCH in application/fhir+json is a FHIRPath Patch: a Parameters resource. A JSON Patch document goes as application/json-patch+json', 'structure');
    }
    if (kind === 'json-patch' && !Array.isArray(fhir.body)) throw new BadRequest('A JSON Patch document must be an array of operations', 'structure');
  }
}

/** Percent-encoded bytes must be UTF-8: URLSearchParams would silently turn them into U+FFFD. */
function assertQueryEncoding(search: string): void {
  for (const part of search.split(/[&=]/)) {
    try {
      decodeURIComponent(part.replace(/\+/g, ' '));
    } catch {
      throw new BadRequest(`The query part "${part}" is not valid percent-encoded UTF-8`);
    }
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequest(`The path segment "${segment}" is not valid percent-encoded UTF-8`);
  }
}

const SUMMARY_VALUES = new Set(['true', 'false', 'text', 'data', 'count']);

function assertSummary(value: string | null): void {
  if (value !== null && !SUMMARY_VALUES.has(value)) throw new BadRequest(`_summary must be true, false, text, data or count, got "${value}"`);
}



async function send(ctx: InteractionContext, req: Request, res: Response, r: Route, fhir: FhirRequest, out: FhirResponse, n: Negotiated, pretty: boolean): Promise<void> {
  if (out.versionId !== undefined) res.setHeader('ETag', etag(out.versionId));
  if (out.lastModified) res.setHeader('Last-Modified', out.lastModified.toUTCString());
  const isWrite = WRITES.has(r.interaction) && r.interaction !== 'transaction';
  if (out.location && (isWrite || out.status === 201)) res.setHeader('Location', `${ctx.config.baseUrl}/${out.location}`);
  else if (out.location) res.setHeader('Content-Location', `${ctx.config.baseUrl}/${out.location}`);
  for (const [name, value] of Object.entries(out.headers ?? {})) res.setHeader(name, value);
  res.status(out.status);
  if (out.raw) {
    // a bulk export's manifest or NDJSON file: its own media type, whatever was negotiated (decision 020)
    res.setHeader('Content-Type', `${out.raw.contentType}; charset=utf-8`);
    res.end(req.method === 'HEAD' ? undefined : out.raw.text);
    return;
  }
  if (out.status === 304 || out.status === 204) {
    res.end();
    return;
  }
  if (isWrite && fhir.prefer.return === 'minimal') {
    res.end();
    return;
  }
  const outcomeWanted = isWrite && fhir.prefer.return === 'OperationOutcome';
  // A Binary is sent as its own content unless the client asked for FHIR JSON or XML.
  if (out.binary && binaryAsContent(n, out.binary.contentType) && !outcomeWanted) {
    await sendContent(req, res, r, out, out.binary);
    return;
  }
  const summary = fhir.query.find(([k]) => k === '_summary')?.[1];
  const elements = fhir.query.find(([k]) => k === '_elements')?.[1];
  const subset = (r.interaction === 'read' || r.interaction === 'vread' || r.interaction === 'capabilities') && (summary || elements);
  if (out.binary && !outcomeWanted) {
    // FHIR JSON as stored plus base64 data, written as the content is read
    if (n.format === 'json' && !pretty && !subset && out.resourceText !== undefined) {
      const json = binaryJsonPieces(out.resourceText, out.binary);
      res.setHeader('Content-Type', `${n.contentType}; charset=utf-8`);
      res.setHeader('Content-Length', json.length);
      if (req.method === 'HEAD') res.end();
      else await writePieces(res, json.pieces);
      return;
    }
    // XML, pretty printing or subsetting work on the whole resource
    out = await withBinaryData(out);
  }
  // a page's links ask for the next page as this one was asked for
  const representation = fhir.query.filter(([k]) => k === '_format' || k === '_pretty');
  if (representation.length && out.resource?.resourceType === 'Bundle') out = { ...out, resource: linksWithRepresentation(out.resource, ctx.config.baseUrl, representation) };
  let text: string | undefined;
  if (outcomeWanted) {
    text = stringifyJson(operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `${r.interaction} succeeded${out.location ? `: ${out.location}` : ''}` }]), pretty);
  } else {
    if (out.resourceText !== undefined && !pretty) text = subset ? entryResource(out.resourceText, summary, elements?.split(',')).text : out.resourceText;
    else {
      let resource = out.resource ?? (out.resourceText !== undefined ? JSON.parse(out.resourceText) : undefined);
      if (resource && subset) resource = applySubsetting(resource, summary, elements?.split(','));
      text = resource === undefined ? undefined : stringifyJson(resource, pretty);
    }
  }
  // FHIR XML is written from the JSON text, whose decimals keep the digits they were sent with
  if (text !== undefined && n.format === 'xml') text = jsonTextToXml(text, pretty);
  res.setHeader('Content-Type', `${n.contentType}; charset=utf-8`);
  res.end(req.method === 'HEAD' ? undefined : text);
}


/** Raw Binary content, whole or the one byte range asked for (src/http/byteRange.ts), read from the database as it is sent. */
async function sendContent(req: Request, res: Response, r: Route, out: FhirResponse, content: StoredContent): Promise<void> {
  for (const [name, value] of binaryHeaders(content.contentType)) res.setHeader(name, value);
  res.setHeader('Accept-Ranges', 'bytes');
  const length = content.size;
  // Range is defined for GET only; a write's answer is the whole content it stored
  const readable = req.method === 'GET' && out.status === 200 && (r.interaction === 'read' || r.interaction === 'vread');
  const range = readable && rangeStillValid(req.get('if-range'), out.lastModifiedIsWeak ? undefined : out.lastModified) ? byteRange(req.get('range'), length) : { kind: 'full' as const };
  if (range.kind === 'unsatisfiable') throw new RangeNotSatisfiable(length);
  if (range.kind === 'partial') {
    res.status(206).setHeader('Content-Range', `bytes ${range.start}-${range.end}/${length}`);
    res.setHeader('Content-Length', range.end - range.start + 1);
    await writePieces(res, content.bytes(range.start, range.end));
    return;
  }
  res.setHeader('Content-Length', length);
  if (req.method === 'HEAD') res.end();
  else await writePieces(res, content.bytes());
}

function sendError(ctx: InteractionContext, res: Response, e: unknown, pretty: boolean, requestId: string, format: FhirFormat): number {
  let status: number;
  let issues: Issue[];
  let headers: Record<string, string> = {};
  const code = (e as { code?: string }).code;
  if (e instanceof FhirError) {
    status = e.status;
    issues = e.issues;
    headers = e.headers;
  } else if (code === '23505') {
    status = 409;
    issues = [{ severity: 'error', code: 'conflict', diagnostics: 'A concurrent write created the same resource; retry the request' }];
  } else if (dataException(e)) {
    const error = dataException(e)!;
    status = error.status;
    issues = error.issues;
  } else if (code === '40001' || code === '40P01') {
    status = 409;
    issues = [{ severity: 'error', code: 'conflict', diagnostics: 'A concurrent write conflicted with this one; retry the request' }];
  } else if (code === QUERY_CANCELED) {
    // statement_timeout: the server is sound but will not spend more on this request (decision 005)
    status = 503;
    issues = [{ severity: 'error', code: 'timeout', diagnostics: `The query took too long: cancelled after ${ctx.config.dbStatementTimeoutMs} ms (DB_STATEMENT_TIMEOUT_MS). Narrow the search` }];
    ctx.log.warn({ requestId }, 'statement timeout');
  } else if ((e as Error).name === 'KnexTimeoutError' && /acquiring a connection/.test((e as Error).message)) {
    // every pooled connection is busy: a request may come back later
    status = 503;
    issues = [{ severity: 'error', code: 'transient', diagnostics: 'The server is busy: no database connection became free in time. Retry later' }];
    headers = { 'Retry-After': '5' };
    ctx.log.warn({ requestId }, 'database pool exhausted');
  } else if ((e as { code?: string }).code === 'ECONNRESET' || (e as Error).message === 'aborted') {
    // the client went away during its upload: nothing was written, nobody to answer
    ctx.log.info({ requestId }, 'request aborted by the client');
    return 499;
  } else {
    status = 500;
    issues = [{ severity: 'fatal', code: 'exception', diagnostics: `Internal error (request ${requestId})` }];
    ctx.log.error({ err: e, requestId }, 'unhandled error');
  }
  if (res.headersSent) return status;
  // an error after send() began a raw Binary answer: the OperationOutcome is not a download
  res.removeHeader('Content-Disposition');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  const outcome = operationOutcome(issues);
  res.status(status).setHeader('Content-Type', `${format === 'xml' ? FHIR_XML : FHIR_JSON}; charset=utf-8`);
  res.end(format === 'xml' ? resourceToXml(outcome, pretty) : stringifyJson(outcome, pretty));
  return status;
}

export function createApp(ctx: InteractionContext): express.Express {
  const auth = ctx.auth;
  if (!auth) throw new Error('createApp needs the trusted issuers and the access policy (ctx.auth)');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Express's last resort (finalhandler) answers HTML, echoes the path and, outside production, the stack with
  // absolute file paths: it is replaced, for requests the router gives up on before any middleware (a target
  // it cannot parse) as for errors no handler caught (the error middleware at the end).
  const handle = (app as unknown as AppHandle).handle.bind(app);
  // what every answer goes through first, in this order (also on the FHIR lane below)
  const edge: express.RequestHandler[] = [
    (_req, res, next) => {
      setEveryAnswerHeaders(res);
      next();
    },
    // before any other answer, so that errors too carry the CORS headers; OPTIONS asks for no token
    cors(ctx.config.corsOrigins),
    // a URL this long is a hostile or broken client: refused before it is parsed (RFC 9110 §15.5.15)
    (req, res, next) => {
      if (req.url.length <= ctx.config.maxUrlLength) return next();
      res.status(414).setHeader('Content-Type', `${FHIR_JSON}; charset=utf-8`);
      res.end(
        stringifyJson(
          operationOutcome([{ severity: 'error', code: 'too-costly', diagnostics: `The URL has ${req.url.length} characters; at most ${ctx.config.maxUrlLength} are accepted (MAX_URL_LENGTH)` }]),
          false,
        ),
      );
    },
  ];
  (app as unknown as AppHandle).handle = (req, res, next) => {
    if (next === undefined && onFhirLane(req.url ?? '')) return fhirLane(app, edge, fhir, req, res, (err) => lastResort(ctx, req, res, err));
    handle(req, res, next ?? ((err?: unknown) => lastResort(ctx, req, res, err)));
  };
  for (const handler of edge) app.use(handler);

  app.get('/healthz', async (_req, res) => {
    try {
      await ctx.db.knex.raw('SELECT 1');
      res.json({ status: 'ok', database: ctx.db.kind });
    } catch (e) {
      ctx.log.error({ err: e }, 'health check failed');
      res.status(503).json({ status: 'unavailable', database: ctx.db.kind });
    }
  });

  serveSmartConfiguration(app);

  const fhir = async (req: Request, res: Response): Promise<void> => {
    const started = process.hrtime.bigint();
    const incomingId = req.headers["x-request-id"];
    const requestId = typeof incomingId === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(incomingId) ? incomingId : crypto.randomUUID();
    res.setHeader('X-Request-Id', requestId);
    // the representation depends on Accept (and _format): caches must not mix them (Vary is parsed only when CORS set one)
    if (res.getHeader('Vary') === undefined) res.setHeader('Vary', 'Accept');
    else res.vary('Accept');
    const url = new URL(req.originalUrl, 'http://localhost');
    const query = [...url.searchParams] as [string, string][];
    const pretty = url.searchParams.get('_pretty') === 'true';
    let r: Route | undefined;
    let status: number;
    // errors are answered in the format the client negotiated (JSON until that is known)
    let format: FhirFormat = 'json';
    // a client that goes away before its answer takes its statements with it
    const db = ctx.db.forRequest();
    res.on('close', () => {
      if (!res.writableFinished) db.abort();
    });
    try {
      if (url.search.includes('%')) assertQueryEncoding(url.search.slice(1));
      if (url.search.includes('%00')) assertStorable(query, 'A search parameter');
      const n = negotiate(url.searchParams.get('_format') ?? undefined, req.headers.accept);
      if (n.format) format = n.format;
      const segments = url.pathname.replace(/^\/fhir\/?/, '').split('/').filter(Boolean).map(decodeSegment);
      r = route(req.method, segments);
      // a Binary's read, and its write answered with its content (Prefer: return=representation), may answer in the content's own type
      const binaryAnswer = r.resourceType === 'Binary' && (r.interaction === 'read' || r.interaction === 'vread' || r.interaction === 'create' || r.interaction === 'update');
      // a bulk export's status and files answer in JSON and NDJSON, which clients ask for by name
      const bulkAnswer = r.interaction === 'bulk-status' || r.interaction === 'bulk-file';
      if ((!binaryAnswer || !n.any) && !bulkAnswer) assertFhirAcceptable(n);
      const fhir: FhirRequest = {
        method: req.method as FhirRequest['method'],
        resourceType: r.resourceType,
        id: r.id,
        versionId: r.versionId,
        query,
        headers: lowerHeaders(req),
        prefer: parsePrefer(req.get('prefer')),
        clientAddress: req.socket.remoteAddress,
      };
      if (r.interaction === 'read' || r.interaction === 'vread' || r.interaction === 'capabilities') {
        assertSummary(url.searchParams.get('_summary'));
        for (const value of url.searchParams.getAll('_elements')) {
          elementNames(value, ctx.config.elementsMaxNames);
          // a read has no Bundle to carry a warning: only strict handling refuses names that are not elements, as a search does
          const refused = fhir.prefer.handling === 'strict' && r.resourceType ? strictElementsRefusal(r.resourceType, value, ctx.registry.elements(r.resourceType)) : undefined;
          if (refused) throw new BadRequest(refused, 'not-supported');
        }
      }
      await parseBody(ctx, req, r, fhir);
      // over HTTPS, the connection may carry a client certificate that names the caller
      const access = await authenticate(ctx, auth, r, fhir, req.socket instanceof TLSSocket ? req.socket : undefined);
      // the interaction's statements go through a database handle tied to the client's connection
      const out = await runRequest({ ...ctx, db }, access, r, fhir);
      await send(ctx, req, res, r, fhir, out, n, pretty);
      status = out.status;
    } catch (e) {
      if (db.aborted()) {
        ctx.log.info({ requestId }, 'request abandoned by the client: its statements were stopped');
        status = 499;
      } else status = sendError(ctx, res, e, pretty, requestId, format);
    }
    // Never the URL, query or body: they can carry patient identifiers.
    ctx.log.info(
      { requestId, method: req.method, interaction: r?.interaction, resourceType: r?.resourceType, status, ms: Number(process.hrtime.bigint() - started) / 1e6 },
      'request',
    );
  };
  app.use('/fhir', fhir);

  app.use((_req, res) => {
    res.status(404).setHeader('Content-Type', `${FHIR_JSON}; charset=utf-8`);
    res.end(JSON.stringify(operationOutcome([{ severity: 'error', code: 'not-found', diagnostics: 'Not found: the FHIR endpoint is /fhir' }])));
  });
  app.use((err: unknown, req: Request, res: Response, _next: express.NextFunction) => lastResort(ctx, req, res, err));
  return app;
}

interface AppHandle {
  handle(req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
}

/**
 * Request targets the router would hand to the FHIR handler, by their plain prefix: the
 * other routes under /fhir (the SMART configuration) and every other spelling (another
 * case, an absolute URL) are left to the router.
 */
function onFhirLane(url: string): boolean {
  if (!url.startsWith('/fhir')) return false;
  const next = url.charCodeAt(5);
  // end, '/' or '?'
  if (!(Number.isNaN(next) || next === 47 || next === 63)) return false;
  // the router matches paths without regard to case: /fhir/.WELL-KNOWN/… is the SMART configuration's too
  return url.slice(0, 17).toLowerCase() !== '/fhir/.well-known';
}

/**
 * The FHIR interactions, nearly every request, taken from the router's first step to the
 * handler through the same edge, without the router walking its layers (about a twentieth
 * of a read's CPU). What Express's own `handle` sets up is set up the same way; an error is
 * answered by `fail`, as the router's error handler would.
 */
function fhirLane(app: express.Express, edge: express.RequestHandler[], fhir: (req: Request, res: Response) => Promise<void>, incoming: IncomingMessage, response: ServerResponse, fail: (err: unknown) => void): void {
  const req = incoming as Request;
  const res = response as Response;
  req.res = res;
  res.req = req;
  Object.setPrototypeOf(req, app.request);
  Object.setPrototypeOf(res, app.response);
  res.locals ??= Object.create(null);
  req.originalUrl ??= req.url;
  const through = (i: number): void => {
    try {
      if (i < edge.length) {
        edge[i](req, res, (err?: unknown) => (err ? fail(err) : through(i + 1)));
        return;
      }
      fhir(req, res).catch(fail);
    } catch (e) {
      fail(e);
    }
  };
  through(0);
}

/**
 * The answer when no handler answered: an OperationOutcome whose diagnostics never
 * carry the error's message, stack or the request's path.
 */
function lastResort(ctx: InteractionContext, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    if (err !== undefined) ctx.log.error({ err }, 'error after the answer started');
    res.destroy();
    return;
  }
  const e = err as { status?: unknown; statusCode?: unknown; code?: unknown } | undefined;
  const declared = Number(e?.status ?? e?.statusCode);
  let status: number;
  let issue: Issue;
  if (err === undefined) {
    status = 404;
    issue = { severity: 'error', code: 'not-found', diagnostics: 'Not found: the FHIR endpoint is /fhir' };
  } else if (e?.code === 'ERR_INVALID_URL') {
    status = 400;
    issue = { severity: 'error', code: 'invalid', diagnostics: 'The request target is not a valid URL' };
  } else if (declared >= 400 && declared < 500) {
    status = declared;
    issue = { severity: 'error', code: declared === 413 ? 'too-costly' : 'invalid', diagnostics: `The request cannot be served (HTTP ${declared})` };
  } else {
    status = 500;
    const requestId = res.getHeader('X-Request-Id');
    issue = { severity: 'fatal', code: 'exception', diagnostics: `Internal error${requestId ? ` (request ${requestId})` : ''}` };
    ctx.log.error({ err, requestId, method: req.method }, 'unhandled error');
  }
  // the answer may leave before the header middleware ran (the router gave up first)
  setEveryAnswerHeaders(res);
  res.statusCode = status;
  res.setHeader('Content-Type', `${FHIR_JSON}; charset=utf-8`);
  res.end(JSON.stringify(operationOutcome([issue])));
}

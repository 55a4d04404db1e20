import type { NextFunction, Request, Response } from 'express';
import { Issue, operationOutcome } from '../errors';
import { route } from '../interactions/dispatch';
import { FHIR_JSON } from './negotiation';

/**
 * Cross-origin access for browser applications (SMART apps, patient apps) from the origins
 * of CORS_ORIGINS (Fetch standard, "CORS protocol"). Requests carry a bearer token, never
 * cookies: no credentials mode is offered (no Access-Control-Allow-Credentials), so a page
 * cannot make the browser send anything ambient with its request.
 */

export const ALLOWED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** The request headers a FHIR client sends that are not CORS-safelisted. */
export const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'Prefer',
  'If-Match',
  'If-None-Match',
  'If-None-Exist',
  'If-Modified-Since',
  // a document reader resuming a download (Range itself is safelisted for one bytes range)
  'Range',
  'If-Range',
  'X-Break-Glass',
  'X-Request-Id',
  'X-Security-Context',
] as const;

/**
 * The response headers a FHIR client reads besides the safelisted ones: where a created
 * resource is, its version, the request id to quote, why a token was refused, and when to
 * retry a busy server, and which bytes of a document a partial answer carries.
 */
export const EXPOSED_HEADERS = ['Location', 'ETag', 'Last-Modified', 'Content-Location', 'X-Request-Id', 'WWW-Authenticate', 'Retry-After', 'Content-Range', 'Accept-Ranges'] as const;

/**
 * How long a browser may reuse a preflight answer. Browsers cap it (Chromium at 2 h) and
 * cache per URL; ten minutes saves most repeated preflights while a change of CORS_ORIGINS
 * reaches every browser quickly.
 */
export const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** What to answer for one request, as far as CORS is concerned. */
export type CorsDecision =
  /** A preflight from an allowed origin: 204 with these headers. */
  | { kind: 'preflight'; headers: [string, string][] }
  /** A preflight from an origin that is not allowed: 403 and no CORS header. */
  | { kind: 'preflight-refused'; reason: string }
  /** OPTIONS that is not a preflight: the methods of the target (Allow). */
  | { kind: 'options' }
  /** Any other request: these headers on its answer, whatever its status (none for a disallowed origin). */
  | { kind: 'actual'; headers: [string, string][] };

/**
 * The decision for a method and its request headers (lower-cased names), pure. A preflight
 * is an OPTIONS request with Origin and Access-Control-Request-Method (Fetch §4.8). Origins
 * are compared exactly: CORS_ORIGINS holds serialized origins (checked at start-up), which
 * is how browsers write Origin; `null` (sandboxed frames, file: pages) never matches.
 */
export function corsDecision(method: string, headers: Record<string, string | string[] | undefined>, allowedOrigins: readonly string[]): CorsDecision {
  const sent = headers.origin !== undefined;
  const origin = single(headers.origin);
  const allowed = origin !== undefined && origin !== 'null' && allowedOrigins.includes(origin);
  // the answer depends on Origin whenever one was sent: a shared cache must not mix them
  const vary: [string, string][] = sent ? [['Vary', 'Origin']] : [];
  if (method === 'OPTIONS' && sent && headers['access-control-request-method'] !== undefined) {
    if (!allowed || origin === undefined) {
      return {
        kind: 'preflight-refused',
        reason:
          allowedOrigins.length === 0
            ? 'This server accepts no cross-origin browser requests (CORS_ORIGINS is empty)'
            : 'The origin of this page is not one this server accepts cross-origin requests from (CORS_ORIGINS)',
      };
    }
    return {
      kind: 'preflight',
      headers: [
        ['Access-Control-Allow-Origin', origin],
        ...vary,
        ['Access-Control-Allow-Methods', ALLOWED_METHODS.join(', ')],
        ['Access-Control-Allow-Headers', ALLOWED_HEADERS.join(', ')],
        ['Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS)],
      ],
    };
  }
  if (method === 'OPTIONS') return { kind: 'options' };
  if (!allowed || origin === undefined) return { kind: 'actual', headers: vary };
  return {
    kind: 'actual',
    headers: [['Access-Control-Allow-Origin', origin], ...vary, ['Access-Control-Expose-Headers', EXPOSED_HEADERS.join(', ')]],
  };
}

function single(value: string | string[] | undefined): string | undefined {
  // a header sent twice is not one origin; `null` (an opaque origin) is nobody's
  return typeof value === 'string' ? value : undefined;
}

/** Paths served outside the FHIR interactions, with the methods they answer. */
const FIXED_PATHS: Record<string, string[]> = {
  '/.well-known/smart-configuration': ['GET', 'HEAD'],
  '/fhir/.well-known/smart-configuration': ['GET', 'HEAD'],
  '/healthz': ['GET', 'HEAD'],
};

/**
 * The methods a path answers, for `OPTIONS` without a preflight: the router is asked, so
 * the list cannot drift from what is served. Undefined for a path that serves nothing.
 * (FHIR R4 reads capabilities at GET [base]/metadata; OPTIONS is answered as HTTP defines
 * it, RFC 9110 §9.3.7: 204 and Allow.)
 */
export function allowedMethods(pathname: string): string[] | undefined {
  const fixed = FIXED_PATHS[pathname.replace(/\/+$/, '') || '/'];
  if (fixed) return [...fixed, 'OPTIONS'];
  if (pathname !== '/fhir' && !pathname.startsWith('/fhir/')) return undefined;
  let segments: string[];
  try {
    segments = pathname.replace(/^\/fhir\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined;
  }
  const methods = ALLOWED_METHODS.filter((method) => {
    try {
      route(method, segments);
      return true;
    } catch {
      return false;
    }
  });
  return methods.length ? [...methods, 'OPTIONS'] : undefined;
}

function sendOutcome(res: Response, status: number, issue: Issue): void {
  res.status(status).setHeader('Content-Type', `${FHIR_JSON}; charset=utf-8`);
  res.end(JSON.stringify(operationOutcome([issue])));
}

/**
 * The CORS edge, before any other handler: answers OPTIONS (preflights carry no token, so
 * none is asked for) and puts the CORS headers on every other answer, errors included: a
 * browser application can only read a 401 and its WWW-Authenticate when they are there.
 */
export function cors(allowedOrigins: readonly string[]) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const decision = corsDecision(req.method, req.headers, allowedOrigins);
    switch (decision.kind) {
      case 'actual':
        for (const [name, value] of decision.headers) {
          if (name === 'Vary') res.vary(value);
          else res.setHeader(name, value);
        }
        return next();
      case 'preflight':
        for (const [name, value] of decision.headers) res.setHeader(name, value);
        res.status(204).end();
        return;
      case 'preflight-refused':
        // Fetch fails a preflight whose answer lacks a matching Access-Control-Allow-Origin,
        // whatever its status: a 403 refuses as surely as a bare 204, and says why to whoever
        // looks at the exchange (browser tools, a proxy's log), where a 204 would read as success.
        res.vary('Origin');
        sendOutcome(res, 403, { severity: 'error', code: 'forbidden', diagnostics: decision.reason });
        return;
      case 'options': {
        const allow = allowedMethods(new URL(req.originalUrl, 'http://localhost').pathname);
        if (!allow) {
          sendOutcome(res, 404, { severity: 'error', code: 'not-found', diagnostics: 'Not found: nothing is served at this path' });
          return;
        }
        res.setHeader('Allow', allow.join(', '));
        res.status(204).end();
        return;
      }
    }
  };
}

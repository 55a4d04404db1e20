import { ALLOWED_HEADERS, allowedMethods, corsDecision, EXPOSED_HEADERS, PREFLIGHT_MAX_AGE_SECONDS } from './cors';

const APP = 'https://app.example.fr';
const ALLOWED = [APP, 'http://localhost:3000'];

describe('corsDecision', () => {
  it('answers a preflight from an allowed origin with the methods, headers and lifetime', () => {
    expect(corsDecision('OPTIONS', { origin: APP, 'access-control-request-method': 'PUT' }, ALLOWED)).toEqual({
      kind: 'preflight',
      headers: [
        ['Access-Control-Allow-Origin', APP],
        ['Vary', 'Origin'],
        ['Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, PATCH, DELETE'],
        ['Access-Control-Allow-Headers', ALLOWED_HEADERS.join(', ')],
        ['Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS)],
      ],
    });
  });

  it('allows the headers a FHIR client sends, Authorization by name (a wildcard would not cover it)', () => {
    for (const name of ['Authorization', 'Content-Type', 'If-Match', 'If-None-Exist', 'Prefer', 'X-Break-Glass', 'X-Security-Context']) expect(ALLOWED_HEADERS).toContain(name);
  });

  it('gives an allowed origin its answers with the headers a client reads', () => {
    expect(corsDecision('GET', { origin: APP }, ALLOWED)).toEqual({
      kind: 'actual',
      headers: [
        ['Access-Control-Allow-Origin', APP],
        ['Vary', 'Origin'],
        ['Access-Control-Expose-Headers', EXPOSED_HEADERS.join(', ')],
      ],
    });
    for (const name of ['Location', 'ETag', 'Last-Modified', 'Content-Location', 'X-Request-Id', 'WWW-Authenticate']) expect(EXPOSED_HEADERS).toContain(name);
  });

  it.each<[string, Record<string, string | string[] | undefined>, string[]]>([
    ['another origin', { origin: 'https://evil.example' }, ALLOWED],
    ['an origin that only starts like an allowed one', { origin: 'https://app.example.fr.evil.example' }, ALLOWED],
    ['another scheme', { origin: 'http://app.example.fr' }, ALLOWED],
    ['another port', { origin: 'https://app.example.fr:8443' }, ALLOWED],
    ['a path after the origin', { origin: `${APP}/` }, ALLOWED],
    ['the opaque origin null', { origin: 'null' }, [...ALLOWED, 'null']],
    ['Origin sent twice', { origin: [APP, APP] }, ALLOWED],
    ['an allowed origin when none is configured', { origin: APP }, []],
  ])('refuses a preflight from %s, and gives its requests no CORS header', (_name, headers, allowed) => {
    expect(corsDecision('OPTIONS', { ...headers, 'access-control-request-method': 'GET' }, allowed)).toMatchObject({ kind: 'preflight-refused' });
    const actual = corsDecision('GET', headers, allowed);
    expect(actual.kind).toBe('actual');
    const names = (actual as { headers: [string, string][] }).headers.map(([name]) => name);
    expect(names.filter((n) => n.startsWith('Access-Control-'))).toEqual([]);
  });

  it('says when no origin at all is accepted', () => {
    expect(corsDecision('OPTIONS', { origin: APP, 'access-control-request-method': 'GET' }, [])).toMatchObject({ reason: expect.stringMatching(/CORS_ORIGINS is empty/) });
  });

  it('treats OPTIONS without Origin or without Access-Control-Request-Method as plain OPTIONS', () => {
    expect(corsDecision('OPTIONS', {}, ALLOWED)).toEqual({ kind: 'options' });
    expect(corsDecision('OPTIONS', { origin: APP }, ALLOWED)).toEqual({ kind: 'options' });
  });

  it('adds nothing to a request without Origin (servers, EHRs, curl)', () => {
    expect(corsDecision('POST', {}, ALLOWED)).toEqual({ kind: 'actual', headers: [] });
  });
});

describe('allowedMethods', () => {
  it.each<[string, string[] | undefined]>([
    ['/fhir', ['POST', 'OPTIONS']],
    ['/fhir/', ['POST', 'OPTIONS']],
    ['/fhir/metadata', ['GET', 'HEAD', 'OPTIONS']],
    ['/fhir/Patient', ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']],
    ['/fhir/Patient/123', ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']],
    ['/fhir/Patient/123/_history', ['GET', 'HEAD', 'OPTIONS']],
    ['/fhir/Patient/_search', ['GET', 'POST', 'OPTIONS']],
    ['/fhir/.well-known/smart-configuration', ['GET', 'HEAD', 'OPTIONS']],
    ['/.well-known/smart-configuration', ['GET', 'HEAD', 'OPTIONS']],
    ['/fhir/patient', undefined],
    ['/fhir/Patient/1/2/3/4/5', undefined],
    ['/fhir/%E0%A4%A', undefined],
    ['/elsewhere', undefined],
  ])('%s: %j', (path, methods) => {
    expect(allowedMethods(path)).toEqual(methods);
  });
});

import { FHIR_JSON, http, startTarget, Target } from '../harness';

/*
 * Browser applications (SMART apps, patient apps) from the origins of CORS_ORIGINS, and
 * the discovery documents they read before holding a token.
 */

const APP = 'https://app.example.fr';
const NONE = { authorization: '' };

let target: Target;
let closed: Target;

beforeAll(async () => {
  target = await startTarget({ CORS_ORIGINS: `${APP}, http://localhost:3000` });
  closed = await startTarget();
});
afterAll(async () => {
  await target?.close();
  await closed?.close();
});

const preflight = (t: Target, path: string, origin: string, method = 'PUT') =>
  http(t.base, path, {
    method: 'OPTIONS',
    headers: { ...NONE, origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type, if-match, x-break-glass' },
  });

const listed = (value: string | null) => (value ?? '').split(',').map((s) => s.trim().toLowerCase());

describe('CORS preflight', () => {
  it.each(['Patient', 'Patient/123', 'Patient/123/_history/2', '', 'metadata', 'Patient/$validate', '.well-known/smart-configuration'])(
    'answers a preflight from an allowed origin without a token: /fhir/%s',
    async (path) => {
      const res = await preflight(target, path, APP);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expect(res.headers.get('access-control-allow-origin')).toBe(APP);
      expect(listed(res.headers.get('vary'))).toContain('origin');
      expect(listed(res.headers.get('access-control-allow-methods'))).toEqual(['get', 'head', 'post', 'put', 'patch', 'delete']);
      expect(listed(res.headers.get('access-control-allow-headers'))).toEqual(
        expect.arrayContaining(['authorization', 'content-type', 'accept', 'prefer', 'if-match', 'if-none-match', 'if-none-exist', 'if-modified-since', 'x-break-glass', 'x-request-id', 'x-security-context']),
      );
      expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
      // no credentials mode: tokens travel in Authorization, never as cookies
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    },
  );

  it('refuses a preflight from another origin with a 403 and no CORS header', async () => {
    for (const origin of ['https://evil.example', 'http://app.example.fr', 'null']) {
      const res = await preflight(target, 'Patient', origin);
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'forbidden' }] });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-methods')).toBeNull();
    }
  });

  it('refuses every preflight when no origin is configured', async () => {
    const res = await preflight(closed, 'Patient', APP);
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toMatch(/CORS_ORIGINS is empty/);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CORS on answers', () => {
  it('lets an allowed origin read an answer and the headers a FHIR client needs', async () => {
    const created = await http(target.base, 'Patient', { method: 'POST', headers: { origin: APP }, json: { resourceType: 'Patient', name: [{ family: 'CORS' }] } });
    expect(created.status).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBe(APP);
    expect(listed(created.headers.get('access-control-expose-headers'))).toEqual(
      expect.arrayContaining(['location', 'etag', 'last-modified', 'content-location', 'x-request-id', 'www-authenticate']),
    );
    const read = await http(target.base, `Patient/${created.body.id}`, { headers: { origin: APP } });
    expect(read.status).toBe(200);
    expect(read.headers.get('access-control-allow-origin')).toBe(APP);
    // both what the answer depends on
    expect(listed(read.headers.get('vary'))).toEqual(expect.arrayContaining(['origin', 'accept']));
  });

  it('lets an allowed origin read a refusal: 401 with its WWW-Authenticate', async () => {
    const res = await http(target.base, 'Patient', { headers: { ...NONE, origin: APP } });
    expect(res.status).toBe(401);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('carries the CORS headers on an answer refused before routing (414)', async () => {
    const res = await http(target.base, `Patient?name=${'x'.repeat(9000)}`, { headers: { origin: APP } });
    expect(res.status).toBe(414);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
  });

  it('gives another origin no CORS header (its page cannot read the answer) and serves non-browser clients as before', async () => {
    const other = await http(target.base, 'Patient', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('access-control-expose-headers')).toBeNull();
    const plain = await http(target.base, 'Patient');
    expect(plain.status).toBe(200);
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('OPTIONS without a preflight', () => {
  it.each<[string, string]>([
    ['', 'POST, OPTIONS'],
    ['metadata', 'GET, HEAD, OPTIONS'],
    ['Patient', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'],
    ['Patient/123', 'GET, HEAD, PUT, PATCH, DELETE, OPTIONS'],
  ])('answers 204 with the methods of /fhir/%s, without a token', async (path, allow) => {
    const res = await http(target.base, path, { method: 'OPTIONS', headers: NONE });
    expect(res.status).toBe(204);
    expect(res.headers.get('allow')).toBe(allow);
  });

  it('answers 404 for a path that serves nothing', async () => {
    const res = await http(target.base, 'patient/1/2/3/4', { method: 'OPTIONS', headers: NONE });
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});

describe('SMART configuration', () => {
  const root = () => target.base.replace(/\/fhir$/, '');

  it.each(['fhir', 'root'])('is served without a token (%s)', async (where) => {
    const url = where === 'fhir' ? `${target.base}/.well-known/smart-configuration` : `${root()}/.well-known/smart-configuration`;
    const res = await fetch(url, { headers: { origin: APP } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.capabilities).toEqual(expect.arrayContaining(['permission-v2', 'permission-patient', 'permission-user']));
    expect(body.scopes_supported).toEqual(expect.arrayContaining(['patient/*.rs', 'user/*.cruds']));
    expect(body.token_endpoint).toBeUndefined();
    expect(body.authorization_endpoint).toBeUndefined();
  });

  it('answers HEAD too', async () => {
    const res = await fetch(`${target.base}/.well-known/smart-configuration`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  // paths are matched without regard to case, as Express's router matches them
  it.each(['.WELL-KNOWN/smart-configuration', '.Well-Known/smart-configuration/', '.well-known/SMART-Configuration'])('is served whatever the case of its path: /fhir/%s', async (path) => {
    const res = await fetch(`${target.base}/${path}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await res.json()) as Record<string, unknown>).capabilities).toEqual(expect.arrayContaining(['permission-v2', 'permission-patient']));
  });
});

describe('CapabilityStatement rest.security', () => {
  it('states SMART-on-FHIR, and cors only when origins are configured', async () => {
    const open = (await http(target.base, 'metadata', { headers: { ...NONE, accept: FHIR_JSON } })).body.rest[0].security;
    expect(open.cors).toBe(true);
    expect(open.service).toEqual([
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' }], text: expect.any(String) },
    ]);
    expect(open.description).toMatch(/Bearer/);
    expect(open.description).toMatch(/X-Break-Glass/);
    expect(open.description).toMatch(/runs no authorization server/);
    // no OAuth endpoint is claimed
    expect(open.extension).toBeUndefined();
    const shut = (await http(closed.base, 'metadata', { headers: NONE })).body.rest[0].security;
    expect(shut.cors).toBe(false);
    expect(shut.description).not.toMatch(/Mutual TLS|CORS/);
  });
});

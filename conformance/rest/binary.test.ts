import crypto from 'node:crypto';
import http_ from 'node:http';
import { FHIR_JSON, http, startTarget, Target, authorization } from '../harness';

/**
 * Binary (http://hl7.org/fhir/R4/binary.html#rest): raw content in and out by
 * Content-Type / Accept, FHIR JSON with base64 data, X-Security-Context, the size
 * limit and versioned content.
 */
let t: Target;
let small: Target | undefined;
let medium: Target | undefined;
beforeAll(async () => {
  t = await startTarget();
  // BINARY_MAX_BYTES only reaches a server started in this process.
  if (!process.env.FHIR_BASE_URL) small = await startTarget({ BINARY_MAX_BYTES: '1k' });
  if (!process.env.FHIR_BASE_URL) medium = await startTarget({ BINARY_MAX_BYTES: '600k' });
});
afterAll(async () => {
  await t.close();
  await small?.close();
  await medium?.close();
});
// These tests start servers of their own with small upload limits, or watch the database
// pool while an upload stalls: against a server at FHIR_BASE_URL neither is possible, so
// they run in-process only (npm test always runs them).
const inProcess = process.env.FHIR_BASE_URL ? it.skip : it;
// said where it is run, so that a run against FHIR_BASE_URL does not pass them over in silence
if (process.env.FHIR_BASE_URL) console.warn(`binary.test.ts: the in-process tests do not run against ${process.env.FHIR_BASE_URL}: they start servers of their own with small upload limits, or watch the database pool, which a server at FHIR_BASE_URL does not expose`);

/** POST or PUT raw bytes with a Content-Type of their own. */
async function sendRaw(base: string, path: string, method: 'POST' | 'PUT', contentType: string, data: Buffer, headers: Record<string, string> = {}) {
  return http(base, path, { method, body: data, headers: { 'content-type': contentType, ...headers } });
}

/** GET and keep the body as bytes. */
async function getRaw(base: string, path: string, accept: string): Promise<{ status: number; contentType: string | null; data: Buffer }> {
  const res = await fetch(`${base}/${path}`, { headers: { accept, ...authorization(base) } });
  return { status: res.status, contentType: res.headers.get('content-type'), data: Buffer.from(await res.arrayBuffer()) };
}

const idFromLocation = (location: string | null) => {
  const m = /\/Binary\/([^/]+)\/_history\/(\d+)$/.exec(location ?? '');
  expect(m).not.toBeNull();
  return m![1];
};

describe('raw content', () => {
  const pdf = crypto.randomBytes(200 * 1024);
  let id: string;

  beforeAll(async () => {
    const res = await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', pdf);
    expect(res.status).toBe(201);
    id = idFromLocation(res.headers.get('location'));
    expect(res.headers.get('location')).toBe(`${t.base}/Binary/${id}/_history/1`);
    expect(res.headers.get('etag')).toBe('W/"1"');
  });

  it.each(['application/pdf', '*/*'])('answers GET with Accept %s with exactly the bytes and their Content-Type', async (accept) => {
    const res = await getRaw(t.base, `Binary/${id}`, accept);
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('application/pdf');
    expect(res.data.length).toBe(pdf.length);
    expect(res.data.equals(pdf)).toBe(true);
  });

  it('answers a raw upload without sending its content back, unless asked with Prefer: return=representation', async () => {
    // more than two chunks: the representation is read from the upload's spool file in pieces
    const bytes = crypto.randomBytes(600 * 1024);
    let created = '';
    for (const accept of [FHIR_JSON, '*/*']) {
      const res = await fetch(`${t.base}/Binary`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/pdf', accept, ...authorization(t.base) } });
      expect(res.status).toBe(201);
      const text = await res.text();
      expect(text.length).toBeLessThan(2000);
      const body = JSON.parse(text);
      expect(body.resourceType).toBe('Binary');
      created = idFromLocation(res.headers.get('location'));
      expect(body.id).toBe(created);
      expect(body.contentType).toBe('application/pdf');
      expect(body.data).toBeUndefined();
    }
    const updated = await fetch(`${t.base}/Binary/${created}`, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/pdf', accept: FHIR_JSON, ...authorization(t.base) } });
    expect(updated.status).toBe(200);
    expect(((await updated.json()) as { data?: string }).data).toBeUndefined();

    const asked = await fetch(`${t.base}/Binary`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/pdf', accept: '*/*', prefer: 'return=representation', ...authorization(t.base) } });
    expect(asked.status).toBe(201);
    expect(asked.headers.get('content-type')).toBe('application/pdf');
    expect(Buffer.from(await asked.arrayBuffer()).equals(bytes)).toBe(true);
    const askedJson = await fetch(`${t.base}/Binary`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/pdf', accept: FHIR_JSON, prefer: 'return=representation', ...authorization(t.base) } });
    expect(((await askedJson.json()) as { data?: string }).data).toBe(bytes.toString('base64'));
  });

  it('answers GET with Accept application/fhir+json with a Binary resource, data in base64', async () => {
    const res = await http(t.base, `Binary/${id}`, { headers: { accept: FHIR_JSON } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain(FHIR_JSON);
    expect(res.body.resourceType).toBe('Binary');
    expect(res.body.id).toBe(id);
    expect(res.body.contentType).toBe('application/pdf');
    expect(res.body.meta.versionId).toBe('1');
    expect(res.body.data).toBe(pdf.toString('base64'));
  });

  it('answers GET with _format=json with the Binary resource whatever the Accept header', async () => {
    const res = await http(t.base, `Binary/${id}?_format=json`, { headers: { accept: '*/*' } });
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Binary');
    expect(Buffer.from(res.body.data, 'base64').equals(pdf)).toBe(true);
  });
});

describe('FHIR JSON Binary', () => {
  it('stores base64 data posted as application/fhir+json and serves the decoded bytes raw', async () => {
    const content = Buffer.from('Compte rendu — résultat normal\n', 'utf8');
    const res = await http(t.base, 'Binary', { method: 'POST', json: { resourceType: 'Binary', contentType: 'text/plain', data: content.toString('base64') } });
    expect(res.status).toBe(201);
    const id = idFromLocation(res.headers.get('location'));
    const raw = await getRaw(t.base, `Binary/${id}`, 'text/plain');
    expect(raw.status).toBe(200);
    expect(raw.contentType).toMatch(/^text\/plain/);
    expect(raw.data.equals(content)).toBe(true);
    const json = await http(t.base, `Binary/${id}`);
    expect(json.body.data).toBe(content.toString('base64'));
  });

  it.each([
    ['unpadded', 'SGk'],
    ['a lone character', 'A'],
    ['five characters', 'AAAAA'],
    ['empty', ''],
    ['URL-safe characters', 'SG-_'],
  ])('refuses data that is not base64Binary (%s) with 400, storing nothing', async (_what, data) => {
    const res = await http(t.base, 'Binary', { method: 'POST', json: { resourceType: 'Binary', contentType: 'text/plain', data } });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].expression).toEqual(['Binary.data']);
  });

  it('serves a Binary without content as FHIR JSON without data (an empty string is no FHIR value)', async () => {
    const res = await http(t.base, 'Binary', { method: 'POST', json: { resourceType: 'Binary', contentType: 'text/plain' } });
    expect(res.status).toBe(201);
    const id = idFromLocation(res.headers.get('location'));
    const json = await http(t.base, `Binary/${id}`);
    expect(json.status).toBe(200);
    expect(json.body.contentType).toBe('text/plain');
    expect('data' in json.body).toBe(false);
    const inBundle = await http(t.base, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Binary/${id}` } }] } });
    expect(inBundle.body.entry[0].response.status).toMatch(/^200/);
    expect('data' in inBundle.body.entry[0].resource).toBe(false);
  });
});

describe('X-Security-Context', () => {
  it('records the header of a raw POST as Binary.securityContext', async () => {
    const patient = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Contexte' }] } });
    const res = await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', crypto.randomBytes(64), { 'x-security-context': `Patient/${patient.body.id}` });
    expect(res.status).toBe(201);
    const id = idFromLocation(res.headers.get('location'));
    const json = await http(t.base, `Binary/${id}`, { headers: { accept: FHIR_JSON } });
    expect(json.body.securityContext).toEqual({ reference: `Patient/${patient.body.id}` });
  });
});

/** A body sent in pieces of uneven sizes, without Content-Length (chunked transfer). */
function inPieces(data: Buffer, sizes: number[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      let at = 0;
      for (let i = 0; at < data.length; i++) {
        const size = sizes[i % sizes.length];
        controller.enqueue(new Uint8Array(data.subarray(at, at + size)));
        at += size;
      }
      controller.close();
    },
  });
}

const chunkRows = async (target: Target) => Number(((await target.running!.ctx.db.knex.raw('SELECT count(*) AS n FROM binary_chunk')) as { rows: { n: string }[] }).rows[0].n);

describe('streamed uploads', () => {
  inProcess('stores a large upload sent in uneven pieces in chunks, and serves back exactly the bytes', async () => {
    const data = crypto.randomBytes(1300 * 1024 + 17);
    const before = await chunkRows(t);
    const res = await fetch(`${t.base}/Binary`, { method: 'POST', body: inPieces(data, [70001, 333333, 4096]), headers: { 'content-type': 'application/dicom', 'prefer': 'return=minimal', ...authorization(t.base) }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(201);
    // 256 KiB rows: the upload went to the database piece by piece; or, where the suite runs with a content
    // directory (.ci/run), to a file named by its row (docs/decisions/036-binary-content-files.md)
    const { contentDir, contentFileMinBytes } = t.running!.ctx.config;
    const inFile = contentDir !== undefined && data.length >= contentFileMinBytes;
    expect((await chunkRows(t)) - before).toBe(inFile ? 0 : Math.ceil(data.length / (256 * 1024)));
    const id = idFromLocation(res.headers.get('location'));
    const row = await t.running!.ctx.db.knex.raw('SELECT file FROM binary_content WHERE id = ?', [id]);
    expect(row.rows[0].file !== null).toBe(inFile);
    const raw = await getRaw(t.base, `Binary/${id}`, 'application/dicom');
    expect(raw.contentType).toBe('application/dicom');
    expect(raw.data.equals(data)).toBe(true);
  });

  inProcess('a stalled upload holds no database connection: other requests are answered meanwhile', async () => {
    const url = new URL(`${t.base}/Binary`);
    const data = crypto.randomBytes(1000);
    let answer: (status: number) => void;
    const answered = new Promise<number>((resolve) => (answer = resolve));
    const upload = http_.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/pdf', 'content-length': data.length, prefer: 'return=minimal', ...authorization(t.base) } }, (res) => {
      res.resume();
      answer(res.statusCode!);
    });
    upload.write(data.subarray(0, 10));
    // the upload is still open: a search must not wait for it
    const search = await http(t.base, 'Patient?_count=1');
    expect(search.status).toBe(200);
    upload.end(data.subarray(10));
    expect(await answered).toBe(201);
  });

  inProcess('an upload past the limit leaves nothing behind', async () => {
    const before = await chunkRows(medium!);
    const res = await fetch(`${medium!.base}/Binary`, { method: 'POST', body: inPieces(crypto.randomBytes(1024 * 1024), [100000]), headers: { 'content-type': 'application/pdf', accept: FHIR_JSON, ...authorization(medium!.base) }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).resourceType).toBe('OperationOutcome');
    expect(await chunkRows(medium!)).toBe(before);
    expect(((await http(medium!.base, 'Binary/_history')).body.entry ?? []).length).toBe(0);
  });
});

describe('Binary in Bundles', () => {
  it('is marked SUBSETTED in search and history, where its content is not carried', async () => {
    const created = await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', crypto.randomBytes(64));
    const id = idFromLocation(created.headers.get('location'));
    const subsetted = (resource: any) => Boolean(resource.meta?.tag?.some((tag: any) => tag.code === 'SUBSETTED'));
    const search = await http(t.base, `Binary?_id=${id}`);
    expect(search.body.entry[0].resource.data).toBeUndefined();
    expect(subsetted(search.body.entry[0].resource)).toBe(true);
    const history = await http(t.base, `Binary/${id}/_history`);
    expect(subsetted(history.body.entry[0].resource)).toBe(true);
    // the read itself is whole, and not marked
    const read = await http(t.base, `Binary/${id}`);
    expect(read.body.data).toBeDefined();
    expect(subsetted(read.body)).toBe(false);
  });
});

describe('size limit (BINARY_MAX_BYTES=1k)', () => {
  const binaryHistoryTotal = async () => {
    const res = await http(small!.base, 'Binary/_history');
    expect(res.status).toBe(200);
    return (res.body.entry ?? []).length as number;
  };

  inProcess('refuses a 2 KB body with 413 and an OperationOutcome, and creates nothing', async () => {
    const res = await sendRaw(small!.base, 'Binary', 'POST', 'application/pdf', crypto.randomBytes(2048));
    expect(res.status).toBe(413);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].severity).toBe('error');
    expect(await binaryHistoryTotal()).toBe(0);
  });

  inProcess('refuses a 2 KB body sent without Content-Length (chunked) with 413, and creates nothing', async () => {
    const data = crypto.randomBytes(2048);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(data.subarray(0, 1024)));
        controller.enqueue(new Uint8Array(data.subarray(1024)));
        controller.close();
      },
    });
    const res = await fetch(`${small!.base}/Binary`, { method: 'POST', body, headers: { 'content-type': 'application/pdf', accept: FHIR_JSON, ...authorization(small!.base) }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).resourceType).toBe('OperationOutcome');
    expect(await binaryHistoryTotal()).toBe(0);
  });

  inProcess('applies the limit to the decoded content of FHIR JSON and of transaction entries, not to its base64', async () => {
    const binary = (bytes: number) => ({ resourceType: 'Binary', contentType: 'application/pdf', data: crypto.randomBytes(bytes).toString('base64') });
    // 900 bytes is 1,200 characters of base64: over 1k as text, under it as content
    expect((await http(small!.base, 'Binary', { method: 'POST', json: binary(900) })).status).toBe(201);
    expect((await http(small!.base, 'Binary', { method: 'POST', json: binary(2048) })).status).toBe(413);
    const before = await binaryHistoryTotal();
    const tx = await http(small!.base, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: binary(2048), request: { method: 'POST', url: 'Binary' } }] } });
    expect(tx.status).toBe(413);
    expect(await binaryHistoryTotal()).toBe(before);
  });

  inProcess('accepts a body under the limit', async () => {
    const data = crypto.randomBytes(1000);
    const res = await sendRaw(small!.base, 'Binary', 'POST', 'application/octet-stream', data);
    expect(res.status).toBe(201);
    const raw = await getRaw(small!.base, `Binary/${idFromLocation(res.headers.get('location'))}`, 'application/octet-stream');
    expect(raw.data.equals(data)).toBe(true);
  });
});

describe('versions', () => {
  it('PUT of raw content makes a new version; vread of version 1 still returns the old bytes', async () => {
    const v1 = crypto.randomBytes(4096);
    const v2 = crypto.randomBytes(3000);
    const created = await sendRaw(t.base, 'Binary', 'POST', 'image/png', v1);
    expect(created.status).toBe(201);
    const id = idFromLocation(created.headers.get('location'));

    const updated = await sendRaw(t.base, `Binary/${id}`, 'PUT', 'image/jpeg', v2);
    expect(updated.status).toBe(200);
    expect(updated.headers.get('etag')).toBe('W/"2"');

    const current = await getRaw(t.base, `Binary/${id}`, '*/*');
    expect(current.contentType).toBe('image/jpeg');
    expect(current.data.equals(v2)).toBe(true);
    const old = await getRaw(t.base, `Binary/${id}/_history/1`, '*/*');
    expect(old.status).toBe(200);
    expect(old.contentType).toBe('image/png');
    expect(old.data.equals(v1)).toBe(true);
    const second = await getRaw(t.base, `Binary/${id}/_history/2`, 'image/jpeg');
    expect(second.data.equals(v2)).toBe(true);
    const oldJson = await http(t.base, `Binary/${id}/_history/1`);
    expect(oldJson.body.meta.versionId).toBe('1');
    expect(oldJson.body.contentType).toBe('image/png');
    expect(oldJson.body.data).toBe(v1.toString('base64'));
  });
});

/** GET with any headers, the body kept as bytes. */
async function fetchRaw(path: string, headers: Record<string, string>, method = 'GET') {
  const res = await fetch(`${t.base}/${path}`, { method, headers: { ...authorization(t.base), ...headers } });
  return { status: res.status, headers: res.headers, data: Buffer.from(await res.arrayBuffer()) };
}

describe('ITI-68 Retrieve Document: the document in its own type', () => {
  const cda = Buffer.from('<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>Compte rendu</title></ClinicalDocument>');
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    for (const type of ['application/xml', 'text/xml']) ids[type] = idFromLocation((await sendRaw(t.base, 'Binary', 'POST', type, cda)).headers.get('location'));
    // application/json is a FHIR body when posted: the JSON document comes base64 in the Binary resource
    const json = await http(t.base, 'Binary', { method: 'POST', json: { resourceType: 'Binary', contentType: 'application/json', data: Buffer.from('{"a":1}').toString('base64') } });
    ids['application/json'] = idFromLocation(json.headers.get('location'));
  });

  it.each([
    ['application/xml', 'application/xml'],
    ['application/xml', 'text/xml'],
    ['text/xml', 'text/xml'],
    ['text/xml', 'application/xml'],
    ['application/xml', 'application/xml, application/fhir+xml;q=0.5'],
    ['application/xml', 'application/fhir+json;q=0.8, text/xml'],
  ])('a CDA stored as %s comes back raw to Accept: %s', async (stored, accept) => {
    const res = await fetchRaw(`Binary/${ids[stored]}`, { accept });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(new RegExp(`^${stored}`));
    expect(res.headers.get('content-disposition')).toBe('attachment');
    expect(res.data.equals(cda)).toBe(true);
  });

  it.each(['application/fhir+xml', 'application/fhir+xml, application/xml;q=0.5', 'application/fhir+json'])('a CDA is the Binary resource to Accept: %s', async (accept) => {
    const res = await fetchRaw(`Binary/${ids['application/xml']}`, { accept });
    expect(res.status).toBe(200);
    const type = res.headers.get('content-type')!;
    expect(type).toMatch(accept.startsWith('application/fhir+json') ? /^application\/fhir\+json/ : /^application\/fhir\+xml/);
    expect(res.data.toString()).toContain('Binary');
    expect(res.data.toString()).toContain(cda.toString('base64'));
  });

  it('a CDA is the Binary resource with _format=xml whatever the Accept header', async () => {
    const res = await fetchRaw(`Binary/${ids['application/xml']}?_format=xml`, { accept: 'application/xml' });
    expect(res.headers.get('content-type')).toMatch(/^application\/(fhir\+)?xml/);
    expect(res.data.toString()).toMatch(/^<Binary xmlns="http:\/\/hl7.org\/fhir">/);
  });

  it('a JSON document comes back raw to Accept: application/json, the resource to application/fhir+json', async () => {
    const raw = await fetchRaw(`Binary/${ids['application/json']}`, { accept: 'application/json' });
    expect(raw.headers.get('content-type')).toMatch(/^application\/json/);
    expect(raw.data.toString()).toBe('{"a":1}');
    const resource = await fetchRaw(`Binary/${ids['application/json']}`, { accept: FHIR_JSON });
    expect(JSON.parse(resource.data.toString()).resourceType).toBe('Binary');
  });

  it('a PDF is still the Binary resource in XML to a client asking application/xml first', async () => {
    const pdf = idFromLocation((await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', Buffer.from('%PDF-1.4'))).headers.get('location'));
    const res = await fetchRaw(`Binary/${pdf}`, { accept: 'application/xml' });
    expect(res.data.toString()).toMatch(/^<Binary xmlns="http:\/\/hl7.org\/fhir">/);
  });
});

describe('ITI-68 Retrieve Document: a document larger than what one statement reads', () => {
  // 9 MiB: 36 chunks of 256 KiB, read 16 at a time as they are sent (src/store/binaryContent.ts)
  const doc = crypto.randomBytes(9 * 1024 * 1024 + 123);
  let id: string;
  beforeAll(async () => {
    const created = await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', doc);
    expect(created.status).toBe(201);
    id = idFromLocation(created.headers.get('location'));
  }, 120000);

  it('comes back whole, byte for byte, as often as it is asked (each read gives its connection back)', async () => {
    for (let i = 0; i < 12; i++) {
      const res = await getRaw(t.base, `Binary/${id}`, 'application/pdf');
      expect(res.status).toBe(200);
      expect(res.data.equals(doc)).toBe(true);
    }
  }, 120000);

  it.each([
    ['across the first statement\'s last chunk', 4 * 1024 * 1024 - 10, 4 * 1024 * 1024 + 9],
    ['in the last chunk', doc.length - 50, doc.length - 1],
    ['over three statements', 100, 8 * 1024 * 1024 + 100],
  ])('serves a range %s', async (_what, start, end) => {
    const res = await fetchRaw(`Binary/${id}`, { accept: '*/*', range: `bytes=${start}-${end}` });
    expect(res.status).toBe(206);
    expect(res.data.equals(doc.subarray(start, end + 1))).toBe(true);
  });
});

describe('ITI-68 Retrieve Document: ranges and validators', () => {
  const doc = crypto.randomBytes(10_000);
  let id: string;
  beforeAll(async () => {
    id = idFromLocation((await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', doc)).headers.get('location'));
  });

  it('says it serves ranges', async () => {
    const res = await fetchRaw(`Binary/${id}`, { accept: '*/*' });
    expect(res.status).toBe(200);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('etag')).toBe('W/"1"');
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=9990-', 9990, 9999],
    ['bytes=9990-20000', 9990, 9999],
    ['bytes=-10', 9990, 9999],
    ['bytes=-20000', 0, 9999],
    ['bytes=5000-5000', 5000, 5000],
  ])('answers Range %s with 206 and exactly those bytes', async (range, start, end) => {
    const res = await fetchRaw(`Binary/${id}`, { accept: 'application/pdf', range });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/10000`);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.data.equals(doc.subarray(start, end + 1))).toBe(true);
  });

  it('serves a range of an earlier version through vread', async () => {
    const res = await fetchRaw(`Binary/${id}/_history/1`, { accept: '*/*', range: 'bytes=10-19' });
    expect(res.status).toBe(206);
    expect(res.data.equals(doc.subarray(10, 20))).toBe(true);
  });

  it.each(['bytes=0-9,20-29', 'bytes=0-9, -5'])('answers several ranges (%s) with the whole document', async (range) => {
    const res = await fetchRaw(`Binary/${id}`, { accept: '*/*', range });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-range')).toBeNull();
    expect(res.data.equals(doc)).toBe(true);
  });

  it.each(['items=0-9', 'bytes=9-0', 'bytes=abc', 'bytes='])('ignores a Range it cannot read (%s)', async (range) => {
    const res = await fetchRaw(`Binary/${id}`, { accept: '*/*', range });
    expect(res.status).toBe(200);
    expect(res.data.equals(doc)).toBe(true);
  });

  it.each(['bytes=10000-', 'bytes=20000-20010', 'bytes=-0'])('answers an unsatisfiable Range (%s) with 416 and the length', async (range) => {
    const res = await fetchRaw(`Binary/${id}`, { accept: '*/*', range });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */10000');
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(JSON.parse(res.data.toString()).resourceType).toBe('OperationOutcome');
  });

  it('keeps a range for If-Range with the Last-Modified date, sends everything for another validator', async () => {
    const lastModified = (await fetchRaw(`Binary/${id}`, { accept: '*/*' })).headers.get('last-modified')!;
    expect((await fetchRaw(`Binary/${id}`, { accept: '*/*', range: 'bytes=0-9', 'if-range': lastModified })).status).toBe(206);
    const older = await fetchRaw(`Binary/${id}`, { accept: '*/*', range: 'bytes=0-9', 'if-range': 'Mon, 01 Jan 2001 00:00:00 GMT' });
    expect(older.status).toBe(200);
    expect(older.data.equals(doc)).toBe(true);
    // entity tags are weak: If-Range compares strongly, so the range is not kept
    expect((await fetchRaw(`Binary/${id}`, { accept: '*/*', range: 'bytes=0-9', 'if-range': 'W/"1"' })).status).toBe(200);
  });

  it('sends the whole content for If-Range with a date two versions share (written in the same second)', async () => {
    const first = crypto.randomBytes(1000);
    const second = crypto.randomBytes(1000);
    const seconds = (s: string) => Math.floor(Date.parse(s) / 1000);
    // a version written in the same second as the one before: tried until the clock allows it
    let pair: { id: string; lastModified: string } | undefined;
    for (let attempt = 0; attempt < 10 && !pair; attempt++) {
      const created = await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', first);
      const newId = idFromLocation(created.headers.get('location'));
      const v1 = await http(t.base, `Binary/${newId}/_history/1`);
      expect((await sendRaw(t.base, `Binary/${newId}`, 'PUT', 'application/pdf', second)).status).toBe(200);
      const v2 = await http(t.base, `Binary/${newId}/_history/2`);
      if (seconds(v1.body.meta.lastUpdated) === seconds(v2.body.meta.lastUpdated)) pair = { id: newId, lastModified: new Date(seconds(v1.body.meta.lastUpdated) * 1000).toUTCString() };
    }
    expect(pair).toBeDefined();
    // a client holding the first 500 bytes of version 1 asks for the rest: it gets version 2 whole, not its tail
    const rest = await fetchRaw(`Binary/${pair!.id}`, { accept: '*/*', range: 'bytes=500-', 'if-range': pair!.lastModified });
    expect(rest.status).toBe(200);
    expect(rest.data.equals(second)).toBe(true);
    // an earlier version's content never changes: its date keeps the range
    const older = await fetchRaw(`Binary/${pair!.id}/_history/1`, { accept: '*/*', range: 'bytes=500-', 'if-range': pair!.lastModified });
    expect(older.status).toBe(206);
    expect(older.data.equals(first.subarray(500))).toBe(true);
  });

  it('keeps a range for If-Range with the date of a version written a second after the one before', async () => {
    const created = await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', crypto.randomBytes(100));
    const newId = idFromLocation(created.headers.get('location'));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = crypto.randomBytes(1000);
    expect((await sendRaw(t.base, `Binary/${newId}`, 'PUT', 'application/pdf', second)).status).toBe(200);
    const lastModified = (await fetchRaw(`Binary/${newId}`, { accept: '*/*' })).headers.get('last-modified')!;
    const rest = await fetchRaw(`Binary/${newId}`, { accept: '*/*', range: 'bytes=500-', 'if-range': lastModified });
    expect(rest.status).toBe(206);
    expect(rest.data.equals(second.subarray(500))).toBe(true);
  });

  it('answers a non-zero suffix Range on empty content with the whole (empty) content', async () => {
    const created = await http(t.base, 'Binary', { method: 'POST', json: { resourceType: 'Binary', contentType: 'application/pdf' } });
    const res = await fetchRaw(`Binary/${idFromLocation(created.headers.get('location'))}`, { accept: 'application/pdf', range: 'bytes=-1' });
    expect(res.status).toBe(200);
    expect(res.data.length).toBe(0);
  });

  it('answers If-None-Match with the current version 304, with or without Range', async () => {
    for (const headers of [{}, { range: 'bytes=0-9' }] as Record<string, string>[]) {
      const res = await fetchRaw(`Binary/${id}`, { accept: '*/*', 'if-none-match': 'W/"1"', ...headers });
      expect(res.status).toBe(304);
      expect(res.data.length).toBe(0);
    }
    expect((await fetchRaw(`Binary/${id}`, { accept: '*/*', 'if-none-match': 'W/"7"' })).status).toBe(200);
  });

  it('gives the Binary resource, never a range of it, to a client asking for FHIR JSON', async () => {
    const res = await fetchRaw(`Binary/${id}`, { accept: FHIR_JSON, range: 'bytes=0-9' });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.data.toString());
    expect(body.resourceType).toBe('Binary');
    expect(Buffer.from(body.data, 'base64').equals(doc)).toBe(true);
  });

  it('answers HEAD with the headers and no body, whatever the Range', async () => {
    const res = await fetchRaw(`Binary/${id}`, { accept: '*/*', range: 'bytes=0-9' }, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.data.length).toBe(0);
  });
});

describe('a document of more chunks than one statement reads (16 of 256 KiB), read as it is sent', () => {
  const CHUNK = 256 * 1024;
  const doc = crypto.randomBytes(16 * CHUNK + 1000);
  let id: string;
  beforeAll(async () => {
    const res = await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', doc);
    expect(res.status).toBe(201);
    id = idFromLocation(res.headers.get('location'));
  });

  it('comes back whole, and a range across the sixteenth chunk exactly', async () => {
    const whole = await fetchRaw(`Binary/${id}`, { accept: 'application/pdf' });
    expect(whole.status).toBe(200);
    expect(whole.data.equals(doc)).toBe(true);
    const [start, end] = [16 * CHUNK - 10, 16 * CHUNK + 9];
    const range = await fetchRaw(`Binary/${id}`, { accept: 'application/pdf', range: `bytes=${start}-${end}` });
    expect(range.status).toBe(206);
    expect(range.data.equals(doc.subarray(start, end + 1))).toBe(true);
  });
});

describe('a document of several stored chunks, read as it is sent', () => {
  // chunks of 256 KiB in the database (src/store/binaryContent.ts): four full ones and a short last one
  const CHUNK = 256 * 1024;
  const doc = crypto.randomBytes(4 * CHUNK + 1000);
  let id: string;
  beforeAll(async () => {
    const res = await sendRaw(t.base, 'Binary', 'POST', 'application/pdf', doc);
    expect(res.status).toBe(201);
    id = idFromLocation(res.headers.get('location'));
  });

  it('comes back whole, with its length', async () => {
    const res = await fetchRaw(`Binary/${id}`, { accept: 'application/pdf' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(doc.length));
    expect(res.data.equals(doc)).toBe(true);
  });

  it.each([
    ['inside the first chunk', 10, 99],
    ['the last byte of a chunk', CHUNK - 1, CHUNK - 1],
    ['the first byte of a chunk', CHUNK, CHUNK],
    ['across one chunk boundary', CHUNK - 10, CHUNK + 9],
    ['across several chunks', 100, 3 * CHUNK + 100],
    ['in the short last chunk', 4 * CHUNK + 10, 4 * CHUNK + 999],
    ['from a boundary to the end', 2 * CHUNK, 4 * CHUNK + 999],
  ])('serves a range %s exactly', async (_what, start, end) => {
    const res = await fetchRaw(`Binary/${id}`, { accept: 'application/pdf', range: `bytes=${start}-${end}` });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${doc.length}`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    expect(res.data.equals(doc.subarray(start, end + 1))).toBe(true);
  });

  it.each([
    ['FHIR JSON', { accept: FHIR_JSON }, ''],
    ['pretty FHIR JSON', { accept: FHIR_JSON }, '?_pretty=true'],
  ])('comes back as %s with the whole content as base64 data', async (_what, headers, query) => {
    const res = await fetchRaw(`Binary/${id}${query}`, headers);
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('content-length') ?? res.data.length)).toBe(res.data.length);
    const body = JSON.parse(res.data.toString());
    expect(body).toMatchObject({ resourceType: 'Binary', id, contentType: 'application/pdf' });
    expect(Buffer.from(body.data, 'base64').equals(doc)).toBe(true);
  });

  it('comes back as FHIR XML with the whole content', async () => {
    const res = await fetchRaw(`Binary/${id}`, { accept: 'application/fhir+xml' });
    expect(res.status).toBe(200);
    const data = /<data value="([^"]*)"\/>/.exec(res.data.toString())?.[1];
    expect(Buffer.from(data ?? '', 'base64').equals(doc)).toBe(true);
  });

  it('is carried by a batch entry that reads it', async () => {
    const res = await http(t.base, '', {
      method: 'POST',
      json: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Binary/${id}` } }] },
    });
    expect(res.status).toBe(200);
    const entry = (res.body as { entry: { resource: { data: string } }[] }).entry[0];
    expect(Buffer.from(entry.resource.data, 'base64').equals(doc)).toBe(true);
  });

  it('is kept by a new version that only changes the metadata ($meta-add)', async () => {
    const res = await http(t.base, `Binary/${id}/$meta-add`, {
      method: 'POST',
      json: { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'http://example.org/tags', code: 'kept' }] } }] },
    });
    expect(res.status).toBe(200);
    const current = await fetchRaw(`Binary/${id}`, { accept: 'application/pdf' });
    expect(current.headers.get('etag')).toBe('W/"2"');
    expect(current.data.equals(doc)).toBe(true);
    const range = await fetchRaw(`Binary/${id}/_history/2`, { accept: '*/*', range: `bytes=${CHUNK - 5}-${CHUNK + 4}` });
    expect(range.data.equals(doc.subarray(CHUNK - 5, CHUNK + 5))).toBe(true);
  });
});

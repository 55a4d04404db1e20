import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { authorization, FHIR_JSON, startTarget, Target } from '../harness';
import { document, Json, ref, REPORT, requests } from '../accessFixtures';

/**
 * Probes of Binary content kept in files (docs/decisions/036-binary-content-files.md) and of
 * the order of refusals on a stored Binary (docs/decisions/031-refusal-consistency.md,
 * amendment of 2026-12-06), over HTTP as a client sees them. A server of this process with a
 * content directory of its own and a threshold of 1 KiB: every document here is a file.
 */
let t: Target;
let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'content-probes-'));
  t = await startTarget({ CONTENT_DIR: dir, CONTENT_FILE_MIN_BYTES: '1k' });
});
afterAll(async () => {
  await t.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);

/** A raw upload (POST Binary), in the record of `patient` when given; its id. */
async function upload(bytes: Buffer, contentType = 'application/pdf', patient?: Json): Promise<string> {
  const res = await fetch(`${t.base}/Binary`, {
    method: 'POST',
    body: bytes,
    headers: { 'content-type': contentType, ...(patient ? { 'x-security-context': ref(patient) } : {}), ...authorization(t.base) },
  });
  expect(res.status).toBe(201);
  return /\/Binary\/([^/]+)\/_history\/1$/.exec(res.headers.get('location') ?? '')![1];
}

/** The raw content of the current version, as a client asking for the document's own type gets it. */
async function download(id: string, accept: string): Promise<{ status: number; type: string | null; data: Buffer }> {
  const res = await fetch(`${t.base}/Binary/${id}`, { headers: { accept, ...authorization(t.base) } });
  return { status: res.status, type: res.headers.get('content-type'), data: Buffer.from(await res.arrayBuffer()) };
}

describe('PATCH on a Binary (http.html#patch: the patch applies to the resource, content included)', () => {
  it.each([
    ['JSON Patch', 'application/json-patch+json', JSON.stringify([{ op: 'replace', path: '/contentType', value: 'application/octet-stream' }])],
    [
      'FHIRPath Patch',
      FHIR_JSON,
      JSON.stringify({
        resourceType: 'Parameters',
        parameter: [{ name: 'operation', part: [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: 'Binary.contentType' }, { name: 'value', valueCode: 'application/octet-stream' }] }],
      }),
    ],
  ])('a %s that changes contentType keeps the document: the new version still has its bytes', async (_, contentType, patch) => {
    const bytes = crypto.randomBytes(3000);
    const id = await upload(bytes);
    const res = await fetch(`${t.base}/Binary/${id}`, { method: 'PATCH', body: patch, headers: { 'content-type': contentType, accept: FHIR_JSON, ...authorization(t.base) } });
    expect(res.status).toBe(200);
    // the version the patch made, as FHIR JSON: the content in `data`
    const json = await get(`Binary/${id}`);
    expect([json.status, json.body.meta.versionId, json.body.contentType]).toEqual([200, '2', 'application/octet-stream']);
    expect(typeof json.body.data).toBe('string');
    expect(Buffer.from(json.body.data ?? '', 'base64').equals(bytes)).toBe(true);
    // and raw, as its own type
    const raw = await download(id, 'application/octet-stream');
    expect([raw.status, raw.type, raw.data.length]).toEqual([200, 'application/octet-stream', bytes.length]);
    expect(raw.data.equals(bytes)).toBe(true);
  });
});

describe('a patient writing a stored Binary of their own record (decision 031, amendment: the write rules before the validator)', () => {
  let patient: Json;
  let id: string;
  let token: string;
  beforeAll(async () => {
    patient = await create({ resourceType: 'Patient', name: [{ family: `Binaire-${RUN}` }], birthDate: '1972-03-04' });
    id = await upload(crypto.randomBytes(2000), 'application/pdf', patient);
    token = await mint(ref(patient), 'patient/*.cruds');
  });
  const binary = (extra: Json) => ({ resourceType: 'Binary', id, contentType: 'application/pdf', securityContext: { reference: ref(patient) }, data: 'aGVsbG8=', ...extra });

  it('a valid PUT is refused by the write rules (the baseline)', async () => {
    const res = await send('PUT', `Binary/${id}`, token, binary({}));
    expect(res.status).toBe(403);
  });

  it.each([
    ['a contentType that is not a media type', { contentType: 'x' }],
    ['data that is not base64', { data: '!!' }],
    ['no contentType', { contentType: undefined }],
  ])('PUT with %s is answered the same 403, alone and as a batch or transaction entry', async (_, extra) => {
    const body = binary(extra);
    const lone = await send('PUT', `Binary/${id}`, token, body);
    const entry = { resource: body, request: { method: 'PUT', url: `Binary/${id}` } };
    const batch = await send('POST', '', token, { resourceType: 'Bundle', type: 'batch', entry: [entry] });
    const transaction = await send('POST', '', token, { resourceType: 'Bundle', type: 'transaction', entry: [entry] });
    expect([lone.status, batch.body.entry[0].response.status.split(' ')[0], transaction.status]).toEqual([403, '403', 403]);
    // the same change as a JSON Patch is answered 403 already
    const patched = await fetch(`${t.base}/Binary/${id}`, {
      method: 'PATCH',
      body: JSON.stringify(Object.entries(extra).map(([k, v]) => (v === undefined ? { op: 'remove', path: `/${k}` } : { op: 'add', path: `/${k}`, value: v }))),
      headers: { 'content-type': 'application/json-patch+json', accept: FHIR_JSON, authorization: `Bearer ${token}` },
    });
    expect(patched.status).toBe(403);
  });
});

describe('a patient writing a document a professional deposited (decision 031, amendment)', () => {
  it('a PUT whose meta is not an object is answered the 403 of the write rules, as every other fault of the body is', async () => {
    const patient = await create({ resourceType: 'Patient', name: [{ family: `Meta-${RUN}` }], birthDate: '1981-05-06' });
    const author = await create({ resourceType: 'Practitioner', name: [{ family: `Auteur-${RUN}` }] });
    const doc = await create(document(patient, REPORT, ref(author)));
    const token = await mint(ref(patient), 'patient/*.cruds');
    const { meta: _meta, ...rest } = doc;
    // an invalid status and a changed description: the write rules' 403 (the baseline)
    expect((await send('PUT', `DocumentReference/${doc.id}`, token, { ...rest, status: 'bogus', description: 'x' })).status).toBe(403);
    const res = await send('PUT', `DocumentReference/${doc.id}`, token, { ...rest, meta: 'x' });
    expect(res.status).toBe(403);
  });
});

describe('Prefer: return=representation on a raw Binary write (binary.html: the content in its own type)', () => {
  it.each(['POST', 'PUT'])('%s with Accept naming only the content type answers the content, as it does when FHIR JSON is listed after it', async (method) => {
    const bytes = crypto.randomBytes(1500);
    const url = method === 'POST' ? `${t.base}/Binary` : `${t.base}/Binary/${await upload(crypto.randomBytes(1500))}`;
    const write = (accept: string) =>
      fetch(url, { method, body: bytes, headers: { 'content-type': 'application/pdf', accept, prefer: 'return=representation', ...authorization(t.base) } });
    // listed with FHIR JSON after it, the content comes back raw
    const both = await write(`application/pdf, ${FHIR_JSON};q=0.5`);
    expect([both.status < 300, both.headers.get('content-type')]).toEqual([true, 'application/pdf']);
    expect(Buffer.from(await both.arrayBuffer()).equals(bytes)).toBe(true);
    // named alone, the same representation is acceptable: not 406
    const alone = await write('application/pdf');
    expect([alone.status < 300, alone.headers.get('content-type')]).toEqual([true, 'application/pdf']);
  });
});

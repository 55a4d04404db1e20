import crypto from 'node:crypto';
import { authorization, startTarget, Target } from '../harness';
import { consent, document, G15, ircp, Json, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * Probes from outside of `Group/[id]/$export` (FHIR Bulk Data Access IG v2, decision 030),
 * of the retrieval of Binary content (ITI-68: ranges and validators at the boundaries of
 * the stored chunks) and of the base64Binary values `$validate` judges (R4 datatypes:
 * `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const { create, get, send, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};
const ASYNC = { prefer: 'respond-async' };
const MiB = 1024 * 1024;

beforeAll(async () => {
  x.gp = await create({ resourceType: 'Practitioner', name: [{ family: `Generaliste-${RUN}` }] });
  await create({
    resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) },
    code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }],
  });
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Membre-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Autre-${RUN}` }], birthDate: '1980-01-01' });
  x.p3 = await create({ resourceType: 'Patient', name: [{ family: `Dehors-${RUN}` }], birthDate: '1990-01-01' });
  tok.admin = await mint(undefined, 'admin');
  tok.gp = await mint(ref(x.gp));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p3 = await mint(ref(x.p3), 'patient/*.cruds');
  x.org = await create({ resourceType: 'Organization', name: `Clinique-${RUN}` });
  x.engine = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type', code: 'integration-engine' }] } });
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
  // the GP is in p1's record only
  await create(consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  x.doc1 = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `r1 ${RUN}`), tok.gp);
  x.doc2 = await create(document(x.p2, REPORT, ref(x.gp), [], undefined, `r2 ${RUN}`));
  x.group = await create({ resourceType: 'Group', type: 'person', actual: true, name: `Cohorte-${RUN}`, member: [{ entity: { reference: ref(x.p1) } }, { entity: { reference: ref(x.p2) } }] }, tok.admin);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const relative = (url: string) => url.slice(t.base.length + 1);

/** Kick-off (GET, or POST with a body), poll until done, read every file: the rows by type. */
async function exportOf(path: string, token?: string, body?: Json): Promise<{ manifest: Json; files: Record<string, Json[]> }> {
  const kick = body === undefined ? await get(path, token, ASYNC) : await send('POST', path, token, body, ASYNC);
  expect([kick.status, kick.text]).toEqual([202, expect.any(String)]);
  const status = relative(kick.headers.get('content-location')!);
  let manifest: Json | undefined;
  for (let i = 0; i < 400 && !manifest; i++) {
    const res = await get(status, token);
    if (res.status === 202) await sleep(25);
    else {
      expect(res.status).toBe(200);
      manifest = res.body;
    }
  }
  if (!manifest) throw new Error('the export did not finish');
  const files: Record<string, Json[]> = {};
  for (const file of manifest.output) {
    const res = await get(relative(file.url), token, { accept: 'application/fhir+ndjson' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+ndjson/);
    for (const r of res.text.split('\n').filter(Boolean).map((l) => JSON.parse(l))) (files[r.resourceType] ??= []).push(r);
  }
  return { manifest, files };
}
const ids = (rs: Json[] | undefined) => (rs ?? []).map((r) => r.id).sort();
const parameters = (...parameter: Json[]) => ({ resourceType: 'Parameters', parameter });

describe('Group/[id]/$export kicked off by POST with a Parameters resource (Bulk Data IG v2 permits it)', () => {
  it('honours _type given in the body, as it does in the URL', async () => {
    const { files } = await exportOf(`Group/${x.group.id}/$export`, undefined, parameters({ name: '_type', valueString: 'Patient' }));
    expect(Object.keys(files)).toEqual(['Patient']);
    expect(ids(files.Patient)).toEqual(ids([x.p1, x.p2]));
  });

  it('honours _since given in the body', async () => {
    const { manifest } = await exportOf(`Group/${x.group.id}/$export`, undefined, parameters({ name: '_since', valueInstant: '2099-01-01T00:00:00Z' }));
    expect(manifest.output).toEqual([]);
  });

  it.each([
    ['_typeFilter', { valueString: 'DocumentReference?status=current' }],
    ['patient', { valueReference: { reference: 'Patient/x' } }],
    ['includeAssociatedData', { valueCode: 'LatestProvenanceResources' }],
  ])('refuses %s in the body as it does in the URL (400), unless handling=lenient', async (name, value) => {
    const refused = await send('POST', `Group/${x.group.id}/$export`, undefined, parameters({ name, ...value }), ASYNC);
    expect([refused.status, refused.body?.issue?.[0]?.code]).toEqual([400, 'not-supported']);
    const lenient = await send('POST', `Group/${x.group.id}/$export`, undefined, parameters({ name, ...value }), { prefer: 'respond-async, handling=lenient' });
    expect(lenient.status).toBe(202);
    await send('DELETE', relative(lenient.headers.get('content-location')!), undefined);
  });

  it('refuses a body that is not a Parameters resource rather than exporting everything', async () => {
    const res = await send('POST', `Group/${x.group.id}/$export`, undefined, { resourceType: 'Patient' }, ASYNC);
    expect([res.status, res.body?.resourceType]).toEqual([400, 'OperationOutcome']);
  });
});

describe('Group/[id]/$export kicked off by GET', () => {
  it('exports the members only, as NDJSON files listed by an absolute URL in the manifest', async () => {
    const { manifest, files } = await exportOf(`Group/${x.group.id}/$export?_type=Patient,DocumentReference`);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.request).toBe(`${t.base}/Group/${x.group.id}/$export?_type=Patient%2CDocumentReference`);
    for (const o of manifest.output) expect(o.url.startsWith(`${t.base}/`)).toBe(true);
    expect(ids(files.Patient)).toEqual(ids([x.p1, x.p2]));
    expect(ids(files.DocumentReference)).toEqual(ids([x.doc1, x.doc2]));
  });

  it('refuses a kick-off without Prefer: respond-async, and the IG parameters it does not serve (400 with an OperationOutcome)', async () => {
    expect((await get(`Group/${x.group.id}/$export`)).status).toBe(400);
    for (const q of ['_typeFilter=DocumentReference%3Fstatus%3Dcurrent', `patient=${ref(x.p1)}`, 'includeAssociatedData=LatestProvenanceResources', '_elements=id']) {
      const res = await get(`Group/${x.group.id}/$export?${q}`, undefined, ASYNC);
      expect([q, res.status, res.body?.issue?.[0]?.code]).toEqual([q, 400, 'not-supported']);
    }
  });

  it('answers a professional, a patient and a system 404 for a Group, exactly as for a Group that does not exist', async () => {
    const shape = (res: { status: number; text: string }, id: string) => ({ status: res.status, text: res.text.split(id).join('ID') });
    for (const who of [tok.gp, tok.p1, tok.p3, tok.engine]) {
      for (const suffix of ['', '/$export', '/_history', '/_history/1', '?_summary=true']) {
        const headers = suffix === '/$export' ? ASYNC : {};
        const real = await get(`Group/${x.group.id}${suffix}`, who, headers);
        const none = await get(`Group/${RUN}-none${suffix}`, who, headers);
        expect(shape(real, x.group.id)).toEqual(shape(none, `${RUN}-none`));
        expect(real.status).toBe(404);
      }
    }
  });

  it('lets nobody but the administrator learn a membership through Patient searches and totals', async () => {
    for (const who of [tok.gp, tok.p1, tok.engine]) {
      // a system searches no Patient but by the INS lookup (decision 035): 403 whatever the Groups
      const system = who === tok.engine;
      for (const q of [`Patient?_has:Group:member:_id=${x.group.id}`, `Patient?_has:Group:member:_id=${x.group.id}&_summary=count`]) {
        const res = await get(q, who);
        if (system) expect(res.status).toBe(403);
        else expect(res.body.total).toBe(0);
      }
      const rev = await get(`Patient?_id=${x.p1.id}&_revinclude=Group:member&_revinclude=*`, who);
      expect(rev.status).toBe(system ? 403 : 200);
      expect(rev.text).not.toContain(x.group.id);
      const history = await get('_history?_count=500', who);
      expect(history.text).not.toContain(x.group.id);
    }
    expect((await get(`Patient?_has:Group:member:_id=${x.group.id}`, tok.admin)).body.total).toBe(2);
  });

  it("keeps an export's status and files to its caller", async () => {
    const kick = await get(`Group/${x.group.id}/$export?_type=Patient`, tok.admin, ASYNC);
    const status = relative(kick.headers.get('content-location')!);
    for (const other of [tok.gp, tok.p1, undefined]) expect((await get(status, other)).status).toBe(404);
    expect((await send('DELETE', status, tok.gp)).status).toBe(404);
    expect((await send('DELETE', status, tok.admin)).status).toBe(202);
  });
});

/** GET with the raw body kept as bytes. */
async function fetchRaw(path: string, headers: Record<string, string>, token?: string, method = 'GET') {
  const res = await fetch(`${t.base}/${path}`, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : authorization(t.base)), ...headers } });
  return { status: res.status, headers: res.headers, data: Buffer.from(await res.arrayBuffer()) };
}
async function postRaw(data: Buffer, headers: Record<string, string> = {}, token?: string): Promise<string> {
  const res = await fetch(`${t.base}/Binary`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...(token ? { authorization: `Bearer ${token}` } : authorization(t.base)), ...headers }, body: data });
  await res.arrayBuffer();
  expect(res.status).toBe(201);
  return /\/Binary\/([^/]+)\/_history\//.exec(res.headers.get('location') ?? '')![1];
}

describe('ITI-68: content at the four-MiB boundary comes back byte for byte', () => {
  // one size below, at and above the 4 MiB a statement reads (16 chunks of 256 KiB)
  const docs = [4 * MiB - 1, 4 * MiB, 4 * MiB + 1].map((n) => crypto.randomBytes(n));
  const ids_: string[] = [];
  beforeAll(async () => {
    for (const d of docs) ids_.push(await postRaw(d));
  }, 120000);

  it('whole, with its length, and as FHIR JSON', async () => {
    for (const [i, d] of docs.entries()) {
      const raw = await fetchRaw(`Binary/${ids_[i]}`, { accept: 'application/octet-stream' });
      expect([raw.status, raw.headers.get('content-length'), raw.data.equals(d)]).toEqual([200, String(d.length), true]);
      const json = await fetchRaw(`Binary/${ids_[i]}`, { accept: 'application/fhir+json' });
      expect(Buffer.from(JSON.parse(json.data.toString()).data, 'base64').equals(d)).toBe(true);
    }
  }, 120000);

  it('in ranges that start, end or straddle the boundary, open-ended and suffix ones', async () => {
    for (const [i, d] of docs.entries()) {
      const n = d.length;
      for (const [range, start, end] of ([
        [`bytes=${4 * MiB - 1}-${4 * MiB - 1}`, 4 * MiB - 1, 4 * MiB - 1],
        [`bytes=${4 * MiB - 3}-${4 * MiB + 2}`, 4 * MiB - 3, Math.min(n - 1, 4 * MiB + 2)],
        [`bytes=${4 * MiB - 2}-`, 4 * MiB - 2, n - 1],
        ['bytes=-3', n - 3, n - 1],
        [`bytes=1-${n - 2}`, 1, n - 2],
      ] as [string, number, number][]).filter(([, start]) => start < n)) {
        const res = await fetchRaw(`Binary/${ids_[i]}`, { accept: 'application/octet-stream', range });
        expect([n, range, res.status, res.headers.get('content-range')]).toEqual([n, range, 206, `bytes ${start}-${end}/${n}`]);
        expect(res.data.equals(d.subarray(start, end + 1))).toBe(true);
      }
      const beyond = await fetchRaw(`Binary/${ids_[i]}`, { accept: 'application/octet-stream', range: `bytes=${n}-` });
      expect([beyond.status, beyond.headers.get('content-range')]).toEqual([416, `bytes */${n}`]);
    }
  }, 120000);
});

describe('ITI-68: FHIR JSON Binaries of every padding come back exactly', () => {
  it.each([1, 2, 3, 4, 5, 255])('%i byte(s), raw and as FHIR JSON', async (size) => {
    const data = crypto.randomBytes(size);
    const created = await send('POST', 'Binary', undefined, { resourceType: 'Binary', contentType: 'application/octet-stream', data: data.toString('base64') });
    expect(created.status).toBe(201);
    const raw = await fetchRaw(`Binary/${created.body.id}`, { accept: 'application/octet-stream' });
    expect(raw.data.equals(data)).toBe(true);
    expect((await get(`Binary/${created.body.id}`)).body.data).toBe(data.toString('base64'));
  });
});

describe("ITI-68: a Binary hidden from the caller tells nothing of itself, whatever the validators or the Range", () => {
  it('is 404 to those outside the record, as a Binary that does not exist, with no length', async () => {
    const data = crypto.randomBytes(5000);
    const id = await postRaw(data, { 'content-type': 'application/pdf', 'x-security-context': ref(x.p1) }, tok.gp);
    await create({ ...document(x.p1, REPORT, ref(x.gp)), content: [{ attachment: { contentType: 'application/pdf', url: `Binary/${id}` } }] }, tok.gp);
    expect((await fetchRaw(`Binary/${id}`, { accept: 'application/pdf', range: 'bytes=-10' }, tok.p1)).data.equals(data.subarray(-10))).toBe(true);
    for (const who of [tok.p3, tok.admin]) {
      for (const headers of [{}, { range: 'bytes=999999-' }, { range: 'bytes=0-9' }, { 'if-none-match': 'W/"1"' }, { 'if-none-match': '*' }] as Record<string, string>[]) {
        for (const method of ['GET', 'HEAD']) {
          const hidden = await fetchRaw(`Binary/${id}`, { accept: 'application/pdf', ...headers }, who, method);
          const none = await fetchRaw(`Binary/${RUN}-none`, { accept: 'application/pdf', ...headers }, who, method);
          expect([method, headers, hidden.status, hidden.headers.get('content-range'), hidden.headers.get('etag')]).toEqual([method, headers, 404, null, null]);
          expect(hidden.data.toString().split(id).join('ID')).toBe(none.data.toString().split(`${RUN}-none`).join('ID'));
        }
      }
    }
  });
});

describe('$validate on base64Binary (R4: (\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+, RFC 4648)', () => {
  const errors = async (resource: Json) => {
    const res = await send('POST', `${resource.resourceType}/$validate`, undefined, resource);
    expect(res.status).toBe(200);
    return (res.body.issue as Json[]).filter((i) => i.severity === 'error' && /Base64/i.test(i.diagnostics ?? '')).length;
  };
  const binary = (data: string) => ({ resourceType: 'Binary', contentType: 'text/plain', data });
  const attachment = (data: string) => ({ resourceType: 'Communication', status: 'completed', payload: [{ contentAttachment: { contentType: 'text/plain', data } }] });

  it.each([
    ['SGVsbG8gd29ybGQ=', 0],
    ['SGVs bG8g d29y bGQ=', 0],
    ['SGVsbG8g\r\nd29ybGQ=', 0],
    ['SGVsbG8gd29ybGQ', 1],
    ['SGk', 1],
    ['SGVsbG8_d29-bGQ=', 1],
    ['SG=sbG8g', 1],
    ['A===', 1],
    ['SGVsbG8gd29ybGQé', 1],
    ['AAAAA', 1],
    // whitespace alone holds no quantum
    ['    ', 1],
  ])('%j: %i base64 error(s), in Binary.data and in an Attachment', async (data, n) => {
    expect(await errors(binary(data))).toBe(n);
    expect(await errors(attachment(data))).toBe(n);
  });

  it("judges Attachment.size and hash against the decoded content", async () => {
    const bytes = Buffer.from(`contenu ${RUN}`);
    const sha1 = crypto.createHash('sha1').update(bytes).digest('base64');
    const att = (extra: Json) => ({ resourceType: 'Communication', status: 'completed', payload: [{ contentAttachment: { contentType: 'text/plain', data: bytes.toString('base64'), ...extra } }] });
    const problems = async (extra: Json) => ((await send('POST', 'Communication/$validate', undefined, att(extra))).body.issue as Json[]).filter((i) => i.severity === 'error' && /Attachment (Size|Hash)/.test(i.diagnostics ?? '')).length;
    expect(await problems({ size: bytes.length, hash: sha1 })).toBe(0);
    expect(await problems({ size: bytes.length + 1 })).toBe(1);
    expect(await problems({ hash: crypto.createHash('sha1').update('autre').digest('base64') })).toBe(1);
  });
});

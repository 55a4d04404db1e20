import crypto from 'node:crypto';
import { startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';
import { consent, DEVICE_TYPES, G15, INS_NIR, ircp, Json, LOINC, MHD_LIST_TYPES, pdsmProvideBundle, ref, REPORT, requests } from '../accessFixtures';

/**
 * What a system that deposits writes beside its documents (docs/decisions/035-what-a-depositing-system-reads.md,
 * amendment of 2026-12-06): a List only when `List.code` carries exactly one coding, MHD
 * `submissionset` or `folder`; no Provenance at all. Each refused shape meets a 403 on every
 * write path (POST, PUT, conditional create and update, transaction and batch entries, an
 * ITI-65 submission) and nothing is written; a proper SubmissionSet and Folder are still
 * deposited, and a professional still writes a Provenance.
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
const uniqueId = () => `urn:oid:1.2.250.1.999.${crypto.randomInt(1e9)}.${crypto.randomInt(1e9)}`;
const WORKLIST = { system: 'http://terminology.hl7.org/CodeSystem/list-example-use-codes', code: 'worklist' };
const MHD = (code: string) => ({ system: MHD_LIST_TYPES, code });
const DESIGNATION = { url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType', valueCodeableConcept: { coding: [{ system: LOINC, code: REPORT.code }] } };
const ONE_CODING = /A system writes a List only as the SubmissionSet or Folder of a deposit: List\.code carries exactly one coding/;
const NO_PROVENANCE = /A system writes no Provenance/;

beforeAll(async () => {
  x.org = await create({ resourceType: 'Organization', name: `Laboratoire-${RUN}` });
  x.patient = await create(withIns({ resourceType: 'Patient', name: [{ family: `Deposee-${RUN}` }], birthDate: '1975-05-05', gender: 'female' }, INS_NIR, freshNir()));
  x.engine = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: DEVICE_TYPES, code: 'integration-engine' }] } });
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
  x.gp = await create({ resourceType: 'Practitioner', name: [{ family: `Medecin-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  tok.gp = await mint(ref(x.gp));
  await create(consent(x.patient, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
});

/** What the record holds of Lists, documents and Provenances, as the unrestricted test client counts them. */
async function holdings(): Promise<Json> {
  const out: Json = {};
  for (const q of [`List?subject=${ref(x.patient)}`, `DocumentReference?patient=${ref(x.patient)}`, `Provenance?patient=${ref(x.patient)}`, 'Provenance?_lastUpdated=ge2000-01-01']) {
    out[q] = (await get(`${q}&_summary=count`, t.token)).body.total;
  }
  return out;
}

/** A List of the patient's record coded as given, with an identifier to find or match it by. */
function list(codings: Json[], identifier = uniqueId()): Json {
  return {
    resourceType: 'List', status: 'current', mode: 'working', title: `liste-${RUN}`, identifier: [{ system: 'urn:ietf:rfc:3986', value: identifier }],
    code: { coding: codings }, subject: { reference: ref(x.patient) }, date: new Date().toISOString(),
  };
}

function provenance(targets: string[]): Json {
  return { resourceType: 'Provenance', target: targets.map((reference) => ({ reference })), recorded: new Date().toISOString(), agent: [{ who: { reference: ref(x.engine) } }] };
}

/** An ITI-65 submission for the record, with a Folder of its document when `folder` codes one (named by the SubmissionSet too). */
function submission(options: { submissionSet?: Json[]; folder?: Json[]; extra?: (bundle: Json) => Json[] } = {}): Json {
  const bundle = pdsmProvideBundle({ subject: ref(x.patient), uniqueId, text: `depot-${RUN}` });
  if (options.submissionSet) bundle.entry[0].resource.code = { coding: options.submissionSet };
  if (options.folder) {
    const fullUrl = `urn:uuid:${crypto.randomUUID()}`;
    const folder = { ...list(options.folder), title: `classeur-${RUN}`, extension: [DESIGNATION], entry: [{ item: { reference: bundle.entry[1].fullUrl } }] };
    bundle.entry[0].resource.entry.push({ item: { reference: fullUrl } });
    bundle.entry.push({ fullUrl, resource: folder, request: { method: 'POST', url: 'List' } });
  }
  for (const resource of options.extra?.(bundle) ?? []) bundle.entry.push({ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource, request: { method: 'POST', url: resource.resourceType } });
  return bundle;
}

const transaction = (type: 'transaction' | 'batch', entries: Json[]) => ({ resourceType: 'Bundle', type, entry: entries });
const postEntry = (resource: Json, ifNoneExist?: string) => ({ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource, request: { method: 'POST', url: resource.resourceType, ...(ifNoneExist ? { ifNoneExist } : {}) } });
const putEntry = (resource: Json, url: string) => ({ resource, request: { method: 'PUT', url } });

/**
 * Every write path for one body: the answers' status and first diagnostics. `criteria`
 * identify it for the conditional forms (they match nothing the system reads).
 */
async function everyPath(body: Json, criteria: string): Promise<[string, number | string, string][]> {
  const type = body.resourceType;
  const free = crypto.randomUUID();
  const answers: [string, { status: number; body: Json }][] = [
    ['POST', await send('POST', type, tok.engine, body)],
    ['PUT at a new id', await send('PUT', `${type}/${free}`, tok.engine, { ...body, id: free })],
    ['conditional create', await send('POST', type, tok.engine, body, { 'if-none-exist': criteria })],
    ['conditional update', await send('PUT', `${type}?${criteria}`, tok.engine, body)],
    ['transaction', await send('POST', '', tok.engine, transaction('transaction', [postEntry(body)]))],
    ['transaction, conditional create', await send('POST', '', tok.engine, transaction('transaction', [postEntry(body, criteria)]))],
    ['transaction, conditional update', await send('POST', '', tok.engine, transaction('transaction', [putEntry(body, `${type}?${criteria}`)]))],
  ];
  const out: [string, number | string, string][] = answers.map(([path, res]) => [path, res.status, String(res.body?.issue?.[0]?.diagnostics ?? '')]);
  // a batch answers each entry as its lone request
  const batch = await send('POST', '', tok.engine, transaction('batch', [postEntry(body), putEntry(body, `${type}?${criteria}`)]));
  expect(batch.status).toBe(200);
  batch.body.entry.forEach((e: Json, i: number) => out.push([`batch entry ${i}`, e.response.status, String(e.response.outcome?.issue?.[0]?.diagnostics ?? '')]));
  return out;
}

describe("a system's List carries exactly one MHD list-type coding", () => {
  it.each([
    ['a SubmissionSet that is a worklist too', [MHD('submissionset'), WORKLIST]],
    ['a Folder that is a worklist too', [WORKLIST, MHD('folder')]],
    ['a List coded both SubmissionSet and Folder', [MHD('submissionset'), MHD('folder')]],
    ['the SubmissionSet coding twice', [MHD('submissionset'), MHD('submissionset')]],
  ])('%s is refused with 403 on every write path (a transaction holding a SubmissionSet: as a submission); nothing is written', async (_what, codings) => {
    const before = await holdings();
    const identifier = uniqueId();
    const answers = await everyPath(list(codings, identifier), `identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${identifier}`)}`);
    // a transaction carrying a SubmissionSet is an MHD submission: its content rules answer before its writes (decision 031).
    // This lone List is an incomplete submission: 422 where a content rule reads it (the Folder rules, the PDSm profile of a
    // POST entry, decision 029), else the write's 403; a complete submission meets the 403 (below)
    const submission = codings.some((c) => c.code === 'submissionset');
    for (const [path, status, diagnostics] of answers) {
      if (submission && path.startsWith('transaction')) {
        const content = status === 422 && /XDSRegistryMetadataError/.test(diagnostics);
        expect([path, content || (status === 403 && ONE_CODING.test(diagnostics))]).toEqual([path, true]);
        continue;
      }
      expect([path, String(status).slice(0, 3)]).toEqual([path, '403']);
      // a PUT at an id the system chose is refused before its body is read (decision 012)
      if (path !== 'PUT at a new id') expect([path, diagnostics]).toEqual([path, expect.stringMatching(ONE_CODING)]);
    }
    expect(answers.find(([path]) => path === 'POST')![2]).toContain(`Found: ${codings.map((c) => `${c.system}|${c.code}`).join(', ')}`);
    expect(await holdings()).toEqual(before);
  });

  it.each([
    ['its SubmissionSet is a worklist too', { submissionSet: [MHD('submissionset'), WORKLIST] }],
    ['its SubmissionSet is coded a Folder too', { submissionSet: [MHD('submissionset'), MHD('folder')] }],
    ['its Folder is a worklist too', { folder: [MHD('folder'), WORKLIST] }],
  ])('an ITI-65 submission where %s is refused with 403; nothing is written', async (_what, options) => {
    const before = await holdings();
    const res = await send('POST', '', tok.engine, submission(options));
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toMatch(ONE_CODING);
    expect(await holdings()).toEqual(before);
  });

  it('an ITI-65 Folder coded a SubmissionSet too is a second SubmissionSet: 422, nothing written', async () => {
    const before = await holdings();
    const res = await send('POST', '', tok.engine, submission({ folder: [MHD('folder'), MHD('submissionset')] }));
    expect(res.status).toBe(422);
    expect(res.body.issue.map((i: Json) => i.diagnostics)).toContainEqual(expect.stringMatching(/carries one SubmissionSet only/));
    expect(await holdings()).toEqual(before);
  });

  it('an ITI-65 submission with a proper SubmissionSet and Folder is deposited, each List with its one coding', async () => {
    const res = await send('POST', '', tok.engine, submission({ folder: [MHD('folder')] }));
    expect([res.status, res.body.issue]).toEqual([200, undefined]);
    const [submissionSet, folder] = [0, 3].map((i) => res.body.entry[i].response.location.split('/')[1]);
    for (const [id, code] of [[submissionSet, 'submissionset'], [folder, 'folder']]) {
      expect((await get(`List/${id}`, t.token)).body.code).toEqual({ coding: [MHD(code)] });
    }
    // and a lone SubmissionSet, as before
    expect((await send('POST', 'List', tok.engine, list([MHD('submissionset')]))).status).toBe(201);
  });
});

describe('a system writes no Provenance', () => {
  it.each([
    ['about the Patient', () => [ref(x.patient)]],
    ['about the Patient and a document of the record', () => [ref(x.patient), `DocumentReference/${x.document}`]],
  ])('%s: 403 on every write path; nothing is written', async (_what, targets) => {
    if (!x.document) x.document = (await send('POST', '', tok.engine, submission())).body.entry[1].response.location.split('/')[1];
    const before = await holdings();
    const answers = await everyPath(provenance(targets()), `patient=${ref(x.patient)}`);
    for (const [path, status, diagnostics] of answers) {
      expect([path, String(status).slice(0, 3)]).toEqual([path, '403']);
      if (path !== 'PUT at a new id') expect([path, diagnostics]).toEqual([path, expect.stringMatching(NO_PROVENANCE)]);
    }
    expect(await holdings()).toEqual(before);
  });

  it.each([
    ['about its own document and the Patient', (bundle: Json) => [provenance([bundle.entry[1].fullUrl, ref(x.patient)])]],
    ['about its own document only (outside any record)', (bundle: Json) => [provenance([bundle.entry[1].fullUrl])]],
  ])('nor inside its ITI-65 submission, %s: 403, nothing written', async (_what, extra) => {
    const before = await holdings();
    const res = await send('POST', '', tok.engine, submission({ extra }));
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toMatch(NO_PROVENANCE);
    expect(await holdings()).toEqual(before);
  });

  it('a professional of the record still writes one', async () => {
    const res = await send('POST', 'Provenance', tok.gp, { ...provenance([ref(x.patient)]), agent: [{ who: { reference: ref(x.gp) } }] });
    expect([res.status, res.body.resourceType]).toEqual([201, 'Provenance']);
  });
});

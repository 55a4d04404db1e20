import crypto from 'node:crypto';
import { startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';
import { consent, document, G15, ircp, Json, minimalProvideBundle, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * Probes of two refusals from outside (docs/decisions/034-systems-that-deposit-nothing.md,
 * 031-refusal-consistency.md): a catalogue application with its own token, even with
 * `system/*.cruds`, writes nothing in a record and reads nothing of it, answering an existing
 * patient as one nobody holds; and a professional without consent naming the patient by a
 * version-specific reference meets the plain reference's 403.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const INS = 'urn:oid:1.2.250.1.213.1.4.8';
const DEVICE_TYPES = 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type';
const { create, get, send, mint } = requests(() => t);
const shape = (res: { status: number; body: Json }, id: string) => ({ status: res.status, issue: JSON.stringify(res.body?.issue ?? null).split(id).join('ID') });
const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  x.org = await create({ resourceType: 'Organization', name: `Editeur-${RUN}` });
  x.gp = await create({ resourceType: 'Practitioner', name: [{ family: `Gp-${RUN}` }] });
  x.stranger = await create({ resourceType: 'Practitioner', name: [{ family: `Str-${RUN}` }] });
  for (const p of [x.gp, x.stranger]) await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
  x.patient = await create(withIns({ resourceType: 'Patient', name: [{ family: `Systeme-${RUN}` }], birthDate: '1980-02-02', gender: 'male', managingOrganization: { reference: ref(x.org) } }, INS, freshNir()));
  x.catalogue = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: DEVICE_TYPES, code: 'catalogue-application' }] } });
  tok.cat = await mint(ref(x.catalogue), 'system/*.cruds');
  tok.gp = await mint(ref(x.gp));
  tok.stranger = await mint(ref(x.stranger));
  await create(consent(x.patient, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  x.bin = await create({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: ref(x.patient) }, data: 'dGVzdA==' }, tok.gp);
  x.doc = await create(document(x.patient, REPORT, ref(x.gp), [], `Binary/${x.bin.id}`, `doc-${RUN}`), tok.gp);
  x.list = await create({ resourceType: 'List', status: 'current', mode: 'working', title: `l-${RUN}`, subject: { reference: ref(x.patient) } }, tok.gp);
  x.comm = await create({ resourceType: 'Communication', status: 'in-progress', subject: { reference: ref(x.patient) }, sender: { reference: ref(x.gp) }, recipient: [{ reference: ref(x.patient) }], payload: [{ contentString: `m-${RUN}` }] }, tok.gp);
});


/** What the record holds, as the unrestricted test client counts it. */
async function holdings(): Promise<Json> {
  const out: Json = {};
  for (const q of [`List?subject=${ref(x.patient)}`, `DocumentReference?patient=${ref(x.patient)}`, `Provenance?target=${ref(x.patient)}`, `Consent?patient=${ref(x.patient)}`, 'Binary?_id=' + x.bin.id, `DocumentReference?_id=${x.doc.id}&description=doc-${RUN}`]) {
    out[q] = (await get(`${q}&_summary=count`, t.token)).body.total;
  }
  // messages: the server's own notifications aside
  out.messages = ((await get(`Communication?subject=${ref(x.patient)}&_count=100`, t.token)).body.entry ?? []).filter((e: Json) => e.resource.sender?.reference !== 'Device/dmp-fhir-server').length;
  return out;
}
const uid = () => `urn:oid:1.2.250.1.999.${crypto.randomInt(1e9)}`;
const P = (id: string) => ({ reference: `Patient/${id}` });

describe('a catalogue application with system/*.cruds', () => {
  it('writes nothing in a record by any create, conditional form, Bundle entry or submission, answering as for an unknown patient', async () => {
    const before = await holdings();
    const nobody = crypto.randomUUID();
    const asks: [string, (id: string) => Promise<{ status: number; body: Json }>][] = [
      ['a Binary', (id) => send('POST', 'Binary', tok.cat, { resourceType: 'Binary', contentType: 'text/plain', securityContext: P(id), data: 'dGVzdA==' })],
      ['a Provenance', (id) => send('POST', 'Provenance', tok.cat, { resourceType: 'Provenance', target: [P(id)], recorded: new Date().toISOString(), agent: [{ who: { reference: ref(x.catalogue) } }] })],
      ['a conditional update', (id) => send('PUT', `DocumentReference?patient=Patient/${id}`, tok.cat, document({ resourceType: 'Patient', id }, REPORT, ref(x.catalogue)))],
      ['a transaction', (id) => send('POST', '', tok.cat, { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'List' }, resource: { resourceType: 'List', status: 'current', mode: 'working', subject: P(id) } }] })],
      ['an ITI-65 submission, absolute', (id) => send('POST', '', tok.cat, minimalProvideBundle({ subject: `${t.base}/Patient/${id}`, author: ref(x.catalogue), uniqueId: uid, text: `c-${RUN}` }))],
      ['an ITI-65 submission, version-specific', (id) => send('POST', '', tok.cat, minimalProvideBundle({ subject: `Patient/${id}/_history/1`, author: ref(x.catalogue), uniqueId: uid, text: `c-${RUN}` }))],
    ];
    for (const [what, ask] of asks) {
      const existing = shape(await ask(x.patient.id), x.patient.id);
      expect([what, existing.status]).toEqual([what, 403]);
      expect([what, existing]).toEqual([what, shape(await ask(nobody), nobody)]);
    }
    const batch = (id: string) => send('POST', '', tok.cat, { resourceType: 'Bundle', type: 'batch', entry: [
      { request: { method: 'POST', url: 'Communication' }, resource: { resourceType: 'Communication', status: 'in-progress', subject: P(id), payload: [{ contentString: 'x' }] } },
      { request: { method: 'DELETE', url: `List?subject=Patient/${id}` } },
      { request: { method: 'PUT', url: `DocumentReference?patient=Patient/${id}` }, resource: document({ resourceType: 'Patient', id }, REPORT, ref(x.catalogue)) },
    ] });
    const entries = (res: { body: Json }, id: string) => res.body.entry.map((e: Json) => [e.response.status, JSON.stringify(e.response.outcome?.issue ?? null).split(id).join('ID')]);
    const fromBatch = entries(await batch(x.patient.id), x.patient.id);
    expect(fromBatch.map((e: string[]) => e[0])).toEqual(['403', '204 No Content', '403']);
    expect(fromBatch).toEqual(entries(await batch(nobody), nobody));
    expect(await holdings()).toEqual(before);
  });

  it('changes nothing by id in a record, answering as for ids nobody holds', async () => {
    const before = await holdings();
    const nobody = crypto.randomUUID();
    const patch = [{ op: 'replace', path: '/description', value: 'h' }];
    const jp = { 'content-type': 'application/json-patch+json' };
    for (const type of ['DocumentReference', 'List', 'Communication', 'Binary', 'Patient']) {
      const id = { DocumentReference: x.doc.id, List: x.list.id, Communication: x.comm.id, Binary: x.bin.id, Patient: x.patient.id }[type] as string;
      expect([type, (await send('DELETE', `${type}/${id}`, tok.cat)).status]).toEqual([type, (await send('DELETE', `${type}/${nobody}`, tok.cat)).status]);
    }
    expect(shape(await send('PATCH', ref(x.doc), tok.cat, patch, jp), x.doc.id)).toEqual(shape(await send('PATCH', `DocumentReference/${nobody}`, tok.cat, patch, jp), nobody));
    const free = `free-${RUN}`;
    const put = shape(await send('PUT', ref(x.doc), tok.cat, { ...x.doc, description: 'hack' }), x.doc.id);
    expect(put.status).toBe(403);
    expect(put).toEqual(shape(await send('PUT', `DocumentReference/${free}`, tok.cat, { ...document({ resourceType: 'Patient', id: nobody }, REPORT, ref(x.catalogue)), id: free }), free));
    expect(await holdings()).toEqual(before);
    expect((await get(ref(x.patient), t.token)).status).toBe(200);
  });

  it('reads no record content or Patient through searches, chains, includes, _has or counts', async () => {
    const Pt = ref(x.patient);
    for (const q of [`DocumentReference?patient=${Pt}`, `DocumentReference?patient.family=Systeme-${RUN}`, `DocumentReference?subject:Patient.identifier=${encodeURIComponent(INS + '|')}`,
      `DocumentReference?_id=${x.doc.id}&_include=DocumentReference:subject`, `DocumentReference?_has:List:item:_id=${x.list.id}`, `List?subject=${Pt}`, `Patient?_has:DocumentReference:patient:_id=${x.doc.id}`,
      'DocumentReference?_summary=count', 'List?_summary=count', 'Consent?_summary=count', 'Provenance?_summary=count', 'Patient?_summary=count', `${Pt}/DocumentReference`, 'DocumentReference/_history', 'Patient/_history']) {
      expect([q, (await get(q, tok.cat)).status]).toEqual([q, 403]);
    }
    for (const q of [`Communication?subject=${Pt}`, 'Communication?_summary=count', `Organization?_has:Patient:organization:_id=${x.patient.id}`]) {
      const res = await get(q, tok.cat);
      expect([q, res.status, res.body.total, res.body.entry ?? []]).toEqual([q, 200, 0, []]);
    }
  });

  it('reaches no Patient or record resource by id, history, $everything, wildcard includes, system history or batch reads', async () => {
    const nobody = crypto.randomUUID();
    for (const [path, other] of [[`${ref(x.patient)}/$everything`, `Patient/${nobody}/$everything`], [`${ref(x.patient)}/_history`, `Patient/${nobody}/_history`], [`DocumentReference/${x.doc.id}/_history`, `DocumentReference/${nobody}/_history`],
      [`Binary/${x.bin.id}`, `Binary/${nobody}`], [`List/${x.list.id}`, `List/${nobody}`], [`Communication/${x.comm.id}`, `Communication/${nobody}`], [`DocumentReference/${x.doc.id}`, `DocumentReference/${nobody}`]]) {
      const res = await get(path, tok.cat);
      expect([path, res.status]).toEqual([path, 404]);
      expect(shape(res, path.split('/')[1])).toEqual(shape(await get(other, tok.cat), nobody));
    }
    const RECORD = ['Patient', 'DocumentReference', 'Binary', 'List', 'Communication', 'Consent', 'Provenance', 'AuditEvent'];
    for (const q of [`Organization?_id=${x.org.id}&_revinclude=*`, `Organization?_id=${x.org.id}&_revinclude=Patient:organization&_revinclude=DocumentReference:custodian`, `Practitioner?_id=${x.gp.id}&_revinclude=*`, '_history?_count=500']) {
      const res = await get(q, tok.cat);
      expect([q, res.status]).toEqual([q, 200]);
      expect([q, (res.body.entry ?? []).map((e: Json) => e.resource.resourceType).filter((type: string) => RECORD.includes(type))]).toEqual([q, []]);
    }
    const batch = await send('POST', '', tok.cat, { resourceType: 'Bundle', type: 'batch', entry: [ref(x.patient), `Binary/${x.bin.id}`, `DocumentReference/${x.doc.id}`, `List/${x.list.id}`, `${ref(x.patient)}/$everything`, `Patient?_id=${x.patient.id}`, `DocumentReference?patient=${ref(x.patient)}`].map((url) => ({ request: { method: 'GET', url } })) });
    expect(batch.status).toBe(200);
    const answers = batch.body.entry.map((e: Json) => [e.response.status, e.resource?.resourceType === 'Bundle' ? (e.resource.entry ?? []).length : null]);
    expect(answers.slice(0, 5)).toEqual(Array(5).fill(['404', null]));
    for (const [status, found] of answers.slice(5)) expect([status.startsWith('200') || status === '403', found ?? 0]).toEqual([true, 0]);
  });
});

describe('a professional without consent naming the patient by a version-specific reference', () => {
  const outcome = (res: { status: number; body: Json }) => ({ status: res.status, issue: res.body?.issue });
  it('meets the plain reference search\'s 403 NO_CONSENT, relative, absolute or typed', async () => {
    const Pt = ref(x.patient);
    const plain = outcome(await get(`DocumentReference?patient=${Pt}`, tok.stranger));
    expect(plain.status).toBe(403);
    expect(plain.issue[0].details.coding[0].code).toBe('NO_CONSENT');
    for (const q of [`DocumentReference?patient=${Pt}/_history/1`, `DocumentReference?patient=${encodeURIComponent(`${t.base}/${Pt}/_history/1`)}`, `DocumentReference?subject:Patient=${Pt}/_history/1`,
      `DocumentReference?subject=${Pt}/_history/1`, `DocumentReference?patient:Patient=${Pt}/_history/1`, `DocumentReference?patient=${Pt}/_history/2`, `DocumentReference?patient=${Pt}/_history/1&_summary=count`,
      `DocumentReference?patient=${Pt}/_history/1,${Pt}`]) {
      expect([q, outcome(await get(q, tok.stranger))]).toEqual([q, plain]);
    }
    for (const type of ['List', 'Communication', 'Consent']) {
      const res = outcome(await get(`${type}?${type === 'Consent' ? 'patient' : 'subject'}=${Pt}/_history/1`, tok.stranger));
      expect([type, res.status, res.issue[0].details.coding[0].code]).toEqual([type, 403, 'NO_CONSENT']);
    }
  });

  it('meets it in batch search entries too', async () => {
    const Pt = ref(x.patient);
    const b = await send('POST', '', tok.stranger, { resourceType: 'Bundle', type: 'batch', entry: [`DocumentReference?patient=${Pt}/_history/1`, `DocumentReference?subject=${encodeURIComponent(`${t.base}/${Pt}/_history/1`)}`].map((url) => ({ request: { method: 'GET', url } })) });
    expect(b.body.entry.map((e: Json) => [e.response.status, (e.response.outcome ?? e.resource)?.issue?.[0]?.details?.coding?.[0]?.code])).toEqual([['403', 'NO_CONSENT'], ['403', 'NO_CONSENT']]);
  });
});

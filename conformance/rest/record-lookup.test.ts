import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';
import { as, consent, G15, ircp, Json, ref, requests } from '../accessFixtures';

/**
 * A professional finds a record by its INS before consent (docs/decisions/033-record-lookup-by-ins.md):
 * the exact lookup `Patient?identifier=<INS system>|<INS>` tells a professional of the
 * matrix who may not enter the record its id and why, and nothing else; every other shape,
 * and every other caller, gets the ordinary search, which tells nothing of that record.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const NIR = 'urn:oid:1.2.250.1.213.1.4.8';
const NIA = 'urn:oid:1.2.250.1.213.1.4.9';
const REFUSAL = 'https://fhir.dmp.esante.example/CodeSystem/dmp-record-refusal';
const SUBSETTED = 'SUBSETTED';
const { create, get, send, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};
const ins: Record<string, string> = {};
const lookup = (value: string, token: string, extra = '', headers: Record<string, string> = {}) => get(`Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}${extra}`, token, headers);

/** A national record with every identity trait and more: what the lookup must not tell. */
async function nationalRecord(name: string): Promise<Json> {
  const value = freshNir();
  const patient = await create(
    withIns(
      {
        resourceType: 'Patient',
        identifier: [{ use: 'usual', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PI' }] }, system: `urn:oid:1.2.250.1.999.${parseInt(RUN, 16)}`, value: `IPP-${name}-${RUN}` }],
        name: [{ family: `${name}-${RUN}`, given: ['Camille'] }],
        birthDate: '1975-04-12',
        gender: 'female',
        address: [{ line: [`12 rue ${RUN}`], city: 'Lyon', postalCode: '69001' }],
        telecom: [{ system: 'phone', value: `06${RUN.slice(0, 8)}` }],
        generalPractitioner: [{ reference: ref(x.gp) }],
      },
      NIR,
      value,
    ),
  );
  ins[name] = value;
  return patient;
}

beforeAll(async () => {
  const practitioner = async (name: string, profession?: string) => {
    const p = await create({ resourceType: 'Practitioner', name: [{ family: `${name}-${RUN}` }] });
    if (profession) await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: profession }] }] });
    return p;
  };
  x.gp = await practitioner('Traitant', '10');
  x.doctor = await practitioner('Urgentiste', '10');
  x.blocked = await practitioner('Bloque', '10');
  x.assistant = await practitioner('Assistant', '31');
  x.roleless = await practitioner('SansRole');
  x.national = await nationalRecord('National');
  x.opposed = await nationalRecord('Oppose');
  x.closed = await nationalRecord('Ferme');
  x.other = await nationalRecord('Autre');
  for (const k of ['gp', 'doctor', 'blocked', 'assistant', 'roleless']) tok[k] = await mint(ref(x[k]));
  tok.national = await mint(ref(x.national), 'patient/*.cruds');
  tok.other = await mint(ref(x.other), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  await create(consent(x.national, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  await create(consent(x.national, ref(x.national), { type: 'deny', actor: [ircp(ref(x.blocked))] }, 'OPTOUT'), tok.national);
  expect((await send('POST', `Patient/${x.opposed.id}/$oppose`, tok.admin, { resourceType: 'Parameters' })).status).toBe(200);
  expect((await send('POST', `Patient/${x.closed.id}/$close?mode=archive`, tok.admin, { resourceType: 'Parameters' })).status).toBe(200);
});

const entries = (res: { body: any }) => (res.body?.entry ?? []) as Json[];
const outcomeOf = (res: { body: any }) => entries(res).find((e) => e.search?.mode === 'outcome')?.resource;

describe('a professional without consent finds the record by its INS', () => {
  it('gets the Patient reduced to its id and the INS sent, and an outcome saying why (NO_CONSENT, the 403\'s words)', async () => {
    const res = await lookup(ins.National, tok.doctor);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(1);
    const [match, outcome] = entries(res);
    expect(match.search.mode).toBe('match');
    expect(match.fullUrl).toBe(`${t.base}/Patient/${x.national.id}`);
    expect(match.resource).toEqual({
      resourceType: 'Patient',
      id: x.national.id,
      meta: { tag: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: SUBSETTED, display: 'subsetted' }] },
      identifier: [{ system: NIR, value: ins.National }],
      active: true,
    });
    expect(outcome.search.mode).toBe('outcome');
    const read = await get(ref(x.national), tok.doctor);
    expect(read.status).toBe(403);
    expect(outcome.resource.issue).toEqual([{ severity: 'information', code: 'forbidden', details: { coding: [{ system: REFUSAL, code: 'NO_CONSENT' }] }, diagnostics: read.body.issue[0].diagnostics, expression: ['Patient'] }]);
    // nothing of the identity or the record but what the caller sent
    for (const secret of [`National-${RUN}`, 'Camille', '1975-04-12', 'female', `rue ${RUN}`, RUN.slice(0, 8), `IPP-National`, ref(x.gp), x.national.meta.versionId === '1' ? x.national.meta.lastUpdated : 'never']) {
      expect([secret, res.text.includes(secret)]).toEqual([secret, false]);
    }
  });

  it('then declares the consent with the id found and reads the record; the lookup is then the ordinary search', async () => {
    const fresh = await nationalRecord('Nouveau');
    const found = await lookup(ins.Nouveau, tok.doctor);
    const id = entries(found)[0].resource.id;
    expect(id).toBe(fresh.id);
    await create(consent({ resourceType: 'Patient', id }, ref(x.doctor), { type: 'permit', actor: [ircp(ref(x.doctor))] }), tok.doctor);
    const read = await get(`Patient/${id}`, tok.doctor);
    expect(read.status).toBe(200);
    expect(read.body.name[0].family).toBe(`Nouveau-${RUN}`);
    const again = await lookup(ins.Nouveau, tok.doctor);
    expect(entries(again).map((e) => e.search.mode)).toEqual(['match']);
    expect(entries(again)[0].resource.birthDate).toBe('1975-04-12');
    expect(entries(again)[0].resource.meta.tag ?? []).not.toContainEqual(expect.objectContaining({ code: SUBSETTED }));
  });

  it('POST Patient/_search with the identifier in the form body is the same lookup', async () => {
    const res = await http(t.base, 'Patient/_search', {
      method: 'POST',
      body: `identifier=${encodeURIComponent(`${NIR}|${ins.National}`)}`,
      headers: { ...as(tok.doctor), 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    expect(entries(res).map((e) => [e.search.mode, e.resource.resourceType, e.resource.id])).toEqual([
      ['match', 'Patient', x.national.id],
      ['outcome', 'OperationOutcome', undefined],
    ]);
    expect(res.text).not.toContain(`National-${RUN}`);
  });

  it('a professional who already has consent gets the ordinary search (the full Patient, no outcome)', async () => {
    const res = await lookup(ins.National, tok.gp);
    expect(entries(res).map((e) => e.search.mode)).toEqual(['match']);
    expect(entries(res)[0].resource.name[0].family).toBe(`National-${RUN}`);
  });

  it('a professional the patient blocked is told so (BLOCKED)', async () => {
    const res = await lookup(ins.National, tok.blocked);
    expect(entries(res)[0].resource.id).toBe(x.national.id);
    expect(outcomeOf(res).issue[0].details.coding[0]).toEqual({ system: REFUSAL, code: 'BLOCKED' });
    expect(outcomeOf(res).issue[0].diagnostics).toBe((await get(ref(x.national), tok.blocked)).body.issue[0].diagnostics);
  });

  it('the other INS systems are looked up as their own: the NIR under the NIA system finds nothing', async () => {
    const res = await get(`Patient?identifier=${encodeURIComponent(`${NIA}|${ins.National}`)}`, tok.doctor);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(x.national.id);
  });

  it('X-Break-Glass on a lookup is refused (400): it is asked on the record, once its id is known', async () => {
    expect((await lookup(ins.National, tok.doctor, '', { 'x-break-glass': 'patient inconscient' })).status).toBe(400);
    const res = await get(`Patient/${x.national.id}`, tok.doctor, { 'x-break-glass': 'patient inconscient' });
    expect(res.status).toBe(200);
  });
});

describe('nothing is told otherwise', () => {
  it('wrong shapes are the ordinary search: nothing of the record, no count', async () => {
    const value = ins.National;
    const shapes: [string, string][] = [
      ['partial value', `Patient?identifier=${encodeURIComponent(`${NIR}|${value.slice(0, 13)}`)}`],
      ['wrong key', `Patient?identifier=${encodeURIComponent(`${NIR}|${value.slice(0, 13)}${value.slice(13) === '00' ? '01' : '00'}`)}`],
      ['missing system', `Patient?identifier=${value}`],
      ['any system', `Patient?identifier=${encodeURIComponent(`|${value}`)}`],
      [':contains', `Patient?identifier:contains=${value}`],
      [':text', `Patient?identifier:text=${value}`],
      ['two values', `Patient?identifier=${encodeURIComponent(`${NIR}|${value},${NIR}|${ins.Autre}`)}`],
      ['the identifier twice', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&identifier=${encodeURIComponent(`${NIR}|${value}`)}`],
      ['an extra parameter', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&gender=female`],
      ['_include=*', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&_include=*`],
      ['_revinclude', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&_revinclude=Consent:patient`],
      ['_has', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&_has:Consent:patient:status=active`],
      ['_summary=count', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&_summary=count`],
      ['_total=accurate', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&_total=accurate`],
      ['_count=0', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&_count=0`],
      ['_elements', `Patient?identifier=${encodeURIComponent(`${NIR}|${value}`)}&_elements=identifier`],
      ['a chain', `Consent?patient.identifier=${encodeURIComponent(`${NIR}|${value}`)}`],
      ['a compartment', `Patient/${x.national.id}/Consent`],
      ['history', `Patient/${x.national.id}/_history`],
      ['$everything', `Patient/${x.national.id}/$everything`],
    ];
    for (const [what, path] of shapes) {
      const res = await get(path, tok.doctor);
      expect([what, res.status === 200 || res.status === 400 || res.status === 403]).toEqual([what, true]);
      // the id is told by the record's 403 to a request that names it (decision 031), never found from an INS
      if (!path.includes(x.national.id)) expect([what, res.text.includes(x.national.id)]).toEqual([what, false]);
      expect([what, entries(res).filter((e) => e.search?.mode === 'match')]).toEqual([what, []]);
      if (res.status === 200) expect([what, res.body.total ?? 0]).toEqual([what, 0]);
      expect([what, res.text.includes(`National-${RUN}`)]).toEqual([what, false]);
    }
  });

  it('the NSS a child carries for a parent (same system, type NH) is not an INS: not found', async () => {
    const nss = freshNir();
    const child = await create({ resourceType: 'Patient', name: [{ family: `Enfant-${RUN}` }], birthDate: '2015-02-03', identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NH' }] }, system: NIR, value: nss }] });
    const res = await lookup(nss, tok.doctor);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(child.id);
    expect(entries(res)).toEqual([]);
  });

  it('the same lookup as a batch entry is the ordinary search', async () => {
    const res = await send('POST', '', tok.doctor, { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient?identifier=${encodeURIComponent(`${NIR}|${ins.National}`)}` } }] });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(x.national.id);
  });

  it('a patient cannot look up another patient', async () => {
    const res = await lookup(ins.National, tok.other);
    expect(res.status).toBe(200);
    expect(res.body.total ?? 0).toBe(0);
    expect(res.text).not.toContain(x.national.id);
  });

  it('a professional whose profession the matrix does not know, or without a role, learns nothing', async () => {
    for (const who of ['assistant', 'roleless']) {
      const res = await lookup(ins.National, tok[who]);
      expect([who, res.status]).toEqual([who, 200]);
      expect([who, res.text.includes(x.national.id)]).toEqual([who, false]);
    }
  });

  it('an opposed or closed record answers as an INS nobody holds', async () => {
    const nobody = await lookup(freshNir(), tok.doctor);
    const shape = (res: { status: number; body: any }) => ({ status: res.status, total: res.body.total, entry: res.body.entry });
    for (const [name, patient] of [['Oppose', x.opposed], ['Ferme', x.closed]] as const) {
      const res = await lookup(ins[name], tok.doctor);
      expect([name, shape(res)]).toEqual([name, shape(nobody)]);
      expect([name, res.text.includes(patient.id)]).toEqual([name, false]);
    }
  });
});

describe('every lookup that tells a record is audited as an attempt', () => {
  it('writes a refused AuditEvent in that record, with the reason and the query, and no notice', async () => {
    const patient = await nationalRecord('Trace');
    const notices = async () => (await get(`Communication?subject=${ref(patient)}&_summary=count`, t.token)).body.total;
    const before = await notices();
    const res = await lookup(ins.Trace, tok.doctor);
    expect(entries(res)[0].resource.id).toBe(patient.id);
    const events = await get(`AuditEvent?patient=${ref(patient)}&outcome=4`, tok.admin);
    const event = entries(events).map((e) => e.resource).find((e) => String(e.outcomeDesc).startsWith('Record lookup by national identifier'));
    expect(event).toBeDefined();
    expect(event.agent[0].who.reference).toBe(ref(x.doctor));
    expect(event.subtype[0].code).toBe('search-type');
    expect(event.outcomeDesc).toContain('no declared consent');
    const query = event.entity.find((e: Json) => e.query);
    expect(Buffer.from(query.query, 'base64').toString()).toContain(ins.Trace);
    expect(event.entity.some((e: Json) => e.what?.reference === ref(patient))).toBe(true);
    expect(await notices()).toBe(before);
    // the patient reads the attempt in their trail
    const own = await get(`AuditEvent?patient=${ref(patient)}&outcome=4`, await mint(ref(patient), 'patient/*.cruds'));
    expect(entries(own).some((e) => e.resource.id === event.id)).toBe(true);
  });
});

describe('requests to the server carry the caller', () => {
  it('a lookup without a token is 401', async () => {
    expect((await http(t.base, `Patient?identifier=${encodeURIComponent(`${NIR}|${ins.National}`)}`, { headers: as('') })).status).toBe(401);
  });
});

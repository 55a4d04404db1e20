import crypto from 'node:crypto';
import { startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';
import { document, Json, minimalProvideBundle, ref, REPORT, requests } from '../accessFixtures';

/**
 * What a system reads of the population (docs/decisions/034-systems-that-deposit-nothing.md):
 * a system whose row of the habilitation matrix deposits documents (an integration engine)
 * finds the patients it deposits for; one that deposits nothing (a catalogue application
 * with its own token) reads no Patient, by any path.
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
/** An answer with the patient's id taken out, to compare an existing record's with an unknown one's. */
const shape = (res: { status: number; body: Json }, id: string) => ({ status: res.status, issue: JSON.stringify(res.body?.issue ?? null).split(id).join('ID') });
const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  x.org = await create({ resourceType: 'Organization', name: `Editeur-${RUN}` });
  x.nir = freshNir();
  x.patient = await create(withIns({ resourceType: 'Patient', name: [{ family: `Systeme-${RUN}` }], birthDate: '1980-02-02', gender: 'male', managingOrganization: { reference: ref(x.org) } }, INS, x.nir));
  const device = (code: string) => create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: DEVICE_TYPES, code }] } });
  x.catalogue = await device('catalogue-application');
  x.engine = await device('integration-engine');
  tok.catalogue = await mint(ref(x.catalogue), 'system/*.rs');
  // scopes that would let it write: what refuses is the policy, not the token
  tok.catalogueWrites = await mint(ref(x.catalogue), 'system/*.cruds');
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
});

describe('a catalogue application with its own token', () => {
  it('is refused a Patient search, whatever the criteria (403 saying why)', async () => {
    for (const query of [`family=Systeme-${RUN}`, `identifier=${encodeURIComponent(`${INS}|${x.nir}`)}`, '_summary=count', '']) {
      const res = await get(`Patient?${query}`, tok.catalogue);
      expect([query, res.status]).toEqual([query, 403]);
      expect(res.body.issue[0].diagnostics).toMatch(/deposits no document reads no Patient/);
    }
  });

  it('gets 404 for a Patient by id, version or history, as for an id nobody holds', async () => {
    for (const path of [ref(x.patient), `${ref(x.patient)}/_history/1`, `${ref(x.patient)}/_history`]) {
      expect([path, (await get(path, tok.catalogue)).status]).toEqual([path, 404]);
    }
  });

  it('reaches no Patient through includes or _has', async () => {
    const rev = await get(`Organization?_id=${x.org.id}&_revinclude=Patient:organization`, tok.catalogue);
    expect(rev.status).toBe(200);
    expect(rev.body.entry.map((e: Json) => e.resource.resourceType)).toEqual(['Organization']);
    const has = await get(`Organization?_has:Patient:organization:family=Systeme-${RUN}`, tok.catalogue);
    expect(has.body.entry ?? []).toEqual([]);
  });

  it('writes nothing in a record, refused exactly as for a record nobody holds', async () => {
    const nobody = crypto.randomUUID();
    const message = (id: string) => ({ resourceType: 'Communication', status: 'in-progress', subject: { reference: `Patient/${id}` }, sender: { reference: ref(x.catalogue) }, recipient: [{ reference: `Patient/${id}` }], payload: [{ contentString: `hello-${RUN}` }] });
    const asks: [string, (id: string) => Promise<{ status: number; body: Json }>][] = [
      ['a List', (id) => send('POST', 'List', tok.catalogueWrites, { resourceType: 'List', status: 'current', mode: 'working', title: `cat-${RUN}`, subject: { reference: `Patient/${id}` } })],
      ['a document', (id) => send('POST', 'DocumentReference', tok.catalogueWrites, document({ resourceType: 'Patient', id }, REPORT, ref(x.catalogue)))],
      ['a message', (id) => send('POST', 'Communication', tok.catalogueWrites, message(id))],
      ['a conditional message', (id) => send('POST', 'Communication', tok.catalogueWrites, message(id), { 'if-none-exist': `subject=Patient/${id}` })],
      ['an ITI-65 submission', (id) => send('POST', '', tok.catalogueWrites, minimalProvideBundle({ subject: `Patient/${id}`, author: ref(x.catalogue), uniqueId: () => `urn:oid:1.2.250.1.999.${crypto.randomInt(1e9)}`, text: `cat-${RUN}` }))],
    ];
    for (const [what, ask] of asks) {
      const existing = shape(await ask(x.patient.id), x.patient.id);
      expect([what, existing.status]).toEqual([what, 403]);
      expect([what, existing]).toEqual([what, shape(await ask(nobody), nobody)]);
    }
    // as the unrestricted test client: nothing was written in the record
    for (const type of ['List', 'Communication', 'DocumentReference']) {
      expect([type, (await get(`${type}?subject=${ref(x.patient)}&_summary=count`)).body.total]).toEqual([type, 0]);
    }
  });

  it('still reads the directory', async () => {
    expect((await get(ref(x.org), tok.catalogue)).status).toBe(200);
  });
});

describe('an integration engine', () => {
  it('finds the patient it deposits for by INS', async () => {
    const res = await get(`Patient?identifier=${encodeURIComponent(`${INS}|${x.nir}`)}`, tok.engine);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: Json) => e.resource.id)).toEqual([x.patient.id]);
  });
});

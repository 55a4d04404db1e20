import crypto from 'node:crypto';
import { startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';
import { consent, document, G15, ircp, Json, MHD_LIST_TYPES, pdsmProvideBundle, ref, REPORT, requests } from '../accessFixtures';

/**
 * What a system that deposits reads of Patient (docs/decisions/035-what-a-depositing-system-reads.md):
 * the exact INS lookup answers the reduced Patient of an open record, and nothing else of
 * Patient comes back to it, by any read path; it still references the patient in what it
 * deposits, by id or by a conditional reference on the INS. Also: a Subscription on a type
 * its writer cannot read is refused, a system writes a List only as the metadata of a
 * deposit, and a Binary's record is a Patient of this server only.
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
const x: Json = {};
const tok: Record<string, string> = {};
const lookup = (nir: string) => `Patient?identifier=${encodeURIComponent(`${INS}|${nir}`)}`;
const uniqueId = () => `urn:oid:1.2.250.1.999.${crypto.randomInt(1e9)}.${crypto.randomInt(1e9)}`;
/** Every resource an answer carries, entries and nested Bundle entries (a batch's answers) alike. */
const carried = (body: Json | undefined): Json[] =>
  (body?.entry ?? []).flatMap((e: Json) => (e.resource ? [e.resource, ...(e.resource.resourceType === 'Bundle' ? carried(e.resource) : [])] : []));
const patients = (body: Json | undefined) => carried(body).filter((r) => r.resourceType === 'Patient');

beforeAll(async () => {
  x.org = await create({ resourceType: 'Organization', name: `Clinique-${RUN}` });
  x.nir = freshNir();
  x.patient = await create(
    withIns(
      {
        resourceType: 'Patient', name: [{ family: `Deposee-${RUN}`, given: ['Alice'] }], birthDate: '1981-03-04', gender: 'female',
        telecom: [{ system: 'phone', value: '0600000000' }], address: [{ city: `Ville-${RUN}` }], managingOrganization: { reference: ref(x.org) },
      },
      INS,
      x.nir,
    ),
  );
  x.otherNir = freshNir();
  x.opposed = await create(withIns({ resourceType: 'Patient', name: [{ family: `Opposee-${RUN}` }], birthDate: '1990-01-01', gender: 'male' }, INS, x.otherNir));
  const device = (code: string) => create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: DEVICE_TYPES, code }] } });
  x.engine = await device('integration-engine');
  x.insurer = await device('health-insurer');
  x.catalogue = await device('catalogue-application');
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
  tok.insurer = await mint(ref(x.insurer), 'system/*.cruds');
  tok.catalogue = await mint(ref(x.catalogue), 'system/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  tok.opposed = await mint(ref(x.opposed), 'patient/*.cruds');
  expect((await send('POST', `Patient/${x.opposed.id}/$oppose`, tok.opposed, { resourceType: 'Parameters' })).status).toBe(200);
  // a message of the engine's organisation names the patient: a path to the Patient through _include
  x.message = (await send('POST', 'Communication', tok.engine, {
    resourceType: 'Communication', status: 'in-progress', subject: { reference: ref(x.patient) }, sender: { reference: ref(x.engine) },
    recipient: [{ reference: ref(x.patient) }], payload: [{ contentString: `bonjour-${RUN}` }],
  })).body;
  expect(x.message.resourceType).toBe('Communication');
});

describe('the INS lookup of a system that deposits', () => {
  it.each([
    ['an integration engine', () => tok.engine],
    ['the insurer', () => tok.insurer],
  ])('%s gets the reduced Patient of the open record, nothing refused', async (_who, token) => {
    for (const path of [lookup(x.nir), `${lookup(x.nir)}&_format=json`]) {
      const res = await get(path, token());
      expect([path, res.status]).toEqual([path, 200]);
      expect(res.body.total).toBe(1);
      expect(res.body.entry).toHaveLength(1);
      expect(res.body.entry[0].search).toEqual({ mode: 'match' });
      expect(res.body.entry[0].resource).toEqual({
        resourceType: 'Patient', id: x.patient.id, meta: { tag: [expect.objectContaining({ code: 'SUBSETTED' })] }, identifier: [{ system: INS, value: x.nir }], active: true,
      });
      expect(res.text).not.toContain(`Deposee-${RUN}`);
      expect(res.text).not.toContain('1981-03-04');
    }
  });

  it('is audited in the record as the system\'s search of that Patient', async () => {
    const trail = await get(`AuditEvent?patient=${x.patient.id}&_count=200`, tok.admin);
    const lookups = trail.body.entry.map((e: Json) => e.resource).filter((e: Json) => e.agent?.some((a: Json) => a.who?.reference === ref(x.insurer)));
    expect(lookups.length).toBeGreaterThan(0);
    expect(lookups[0].outcome).toBe('0');
    expect(JSON.stringify(lookups[0].entity)).toContain(ref(x.patient));
  });

  it('finds nothing for an INS nobody holds, nor for an opposed record', async () => {
    for (const nir of [freshNir(), x.otherNir]) {
      const res = await get(lookup(nir), tok.engine);
      expect(res.status).toBe(200);
      expect(res.body.entry ?? []).toEqual([]);
    }
  });

  it('is no way in for a system that deposits nothing (decision 034)', async () => {
    expect((await get(lookup(x.nir), tok.catalogue)).status).toBe(403);
  });
});

describe('no other read path brings a Patient to a system that deposits', () => {
  it('every other Patient search or type history is 403, saying the lookup is the way', async () => {
    for (const query of [
      `Patient?family=Deposee-${RUN}`,
      'Patient',
      '_summary=count',
      `Patient?_id=${x.patient.id}`,
      `${lookup(x.nir)}&_count=1`,
      `${lookup(x.nir)}&_summary=count`,
      `${lookup(x.nir)}&_elements=name`,
      `${lookup(x.nir)}&_revinclude=Communication:subject`,
      `Patient?identifier=${encodeURIComponent(`${INS}|${x.nir},${INS}|${x.otherNir}`)}`,
      `Patient?identifier=${encodeURIComponent(x.nir)}`,
      `Patient?organization=${ref(x.org)}`,
      'Patient/_history',
    ].map((q) => (q.startsWith('Patient') ? q : `Patient?${q}`))) {
      const res = await get(query, tok.engine);
      expect([query, res.status]).toEqual([query, 403]);
      expect(res.body.issue[0].diagnostics).toMatch(/^A system finds the patient it deposits for only by its INS/);
    }
    const posted = await send('POST', 'Patient/_search', tok.engine, undefined, { 'content-type': 'application/x-www-form-urlencoded' });
    expect(posted.status).toBe(403);
  });

  it('by id, version or instance history: 404 as an id nobody holds', async () => {
    const none = crypto.randomUUID();
    for (const suffix of ['', '/_history/1', '/_history', '/$meta']) {
      const known = await get(`${ref(x.patient)}${suffix}`, tok.engine);
      const unknown = await get(`Patient/${none}${suffix}`, tok.engine);
      expect([suffix, known.status]).toEqual([suffix, 404]);
      expect(JSON.stringify(known.body.issue).split(x.patient.id).join('ID')).toEqual(JSON.stringify(unknown.body.issue).split(none).join('ID'));
    }
  });

  it('through _include, _revinclude, _has, chains, compartments, $everything and system history', async () => {
    const paths = [
      `Communication?_id=${x.message.id}&_include=Communication:subject&_include=Communication:recipient`,
      `Communication?_id=${x.message.id}&_include=*`,
      `Organization?_id=${x.org.id}&_revinclude=Patient:organization&_revinclude=*`,
      `Organization?_has:Patient:organization:family=Deposee-${RUN}`,
      `Organization?_has:Patient:organization:family=Deposee-${RUN}&_summary=count`,
      `Communication?subject:Patient.family=Deposee-${RUN}`,
      `Communication?subject:Patient.family=Deposee-${RUN}&_summary=count`,
      `Patient/${x.patient.id}/*`,
      `Patient/${x.patient.id}/*?_summary=count`,
      `Patient/${x.patient.id}/Communication?_include=Communication:subject`,
      `Patient/${x.patient.id}/$everything`,
      '_history?_count=500',
    ];
    for (const path of paths) {
      const res = await get(path, tok.engine);
      expect([path, res.status < 500, patients(res.body)]).toEqual([path, true, []]);
      expect([path, res.text.includes(`Ville-${RUN}`) || res.text.includes('1981-03-04')]).toEqual([path, false]);
    }
    // the message itself still comes back: only the Patient is left out
    const own = await get(`Communication?_id=${x.message.id}&_include=Communication:subject`, tok.engine);
    expect(carried(own.body).map(ref)).toEqual([ref(x.message)]);
    expect((await get(`Organization?_has:Patient:organization:family=Deposee-${RUN}&_summary=count`, tok.engine)).body.total).toBe(0);
    expect((await get(`Communication?subject:Patient.family=Deposee-${RUN}&_summary=count`, tok.engine)).body.total).toBe(0);
  });

  it('in a batch: by id, by lookup, by search', async () => {
    const entry = (url: string) => ({ request: { method: 'GET', url } });
    const res = await send('POST', '', tok.engine, {
      resourceType: 'Bundle', type: 'batch',
      entry: [entry(ref(x.patient)), entry(lookup(x.nir)), entry(`Patient?family=Deposee-${RUN}`), entry(`Communication?_id=${x.message.id}&_include=Communication:subject`)],
    });
    expect(res.status).toBe(200);
    expect(patients(res.body)).toEqual([]);
    expect(res.text).not.toContain(`Ville-${RUN}`);
    // each entry is answered as its lone request; the lookup is a lone request's alone (decision 033): in a batch, refused as any other Patient search
    expect(res.body.entry.map((e: Json) => e.response.status)).toEqual(['404', '403', '403', '200 OK']);
    expect(res.body.entry[2].response.outcome.issue[0].diagnostics).toMatch(/^A system finds the patient it deposits for only by its INS/);
    const tx = await send('POST', '', tok.engine, { resourceType: 'Bundle', type: 'transaction', entry: [entry(`Patient?family=Deposee-${RUN}`)] });
    expect(tx.status).toBe(403);
    expect(tx.text).not.toContain(`Ville-${RUN}`);
    // any type closed to a caller as a whole: an administrator's search of documents
    const admin = await send('POST', '', tok.admin, { resourceType: 'Bundle', type: 'batch', entry: [entry('DocumentReference?status=current'), entry(`Patient?_id=${x.patient.id}`)] });
    expect(admin.body.entry.map((e: Json) => e.response.status)).toEqual(['403', '200 OK']);
  });

  it('in its exports', async () => {
    const kick = await get('Patient/$export', tok.engine, { prefer: 'respond-async' });
    expect(kick.status).toBe(202);
    const status = kick.headers.get('content-location')!.slice(t.base.length + 1);
    let manifest: Json | undefined;
    for (let i = 0; i < 400 && !manifest; i++) {
      const res = await get(status, tok.engine);
      if (res.status === 202) await new Promise((r) => setTimeout(r, 25));
      else manifest = res.body;
    }
    expect(manifest).toBeDefined();
    for (const file of manifest!.output) {
      expect(file.type).not.toBe('Patient');
      const content = await get(file.url.slice(t.base.length + 1), tok.engine, { accept: 'application/fhir+ndjson' });
      expect(content.text).not.toContain(`Ville-${RUN}`);
      expect(content.text).not.toContain('"resourceType":"Patient"');
    }
  });
});

describe('a system that deposits still references the patient it deposits for', () => {
  it('by id, in a document and in an ITI-65 submission', async () => {
    const doc = await send('POST', 'DocumentReference', tok.engine, document(x.patient, REPORT, ref(x.org), [], undefined, `par-id-${RUN}`));
    expect(doc.status === 201 ? 201 : doc.text).toBe(201);
    const bundle = await send('POST', '', tok.engine, pdsmProvideBundle({ subject: ref(x.patient), uniqueId, text: `iti65-${RUN}` }));
    expect(bundle.status === 200 ? 200 : bundle.text).toBe(200);
  });

  it('by a conditional reference on its INS, in a document and in an ITI-65 submission', async () => {
    const conditional = `Patient?identifier=${INS}|${x.nir}`;
    const doc = await send('POST', 'DocumentReference', tok.engine, { ...document(x.patient, REPORT, ref(x.org), [], undefined, `par-ins-${RUN}`), subject: { reference: conditional } });
    expect(doc.status === 201 ? 201 : doc.text).toBe(201);
    expect(doc.body.subject.reference).toBe(ref(x.patient));
    const bundle = await send('POST', '', tok.engine, pdsmProvideBundle({ subject: conditional, uniqueId, text: `iti65-ins-${RUN}` }));
    expect(bundle.status === 200 ? 200 : bundle.text).toBe(200);
    const stored = await get(`DocumentReference?patient=${x.patient.id}&description=par-ins-${RUN}`);
    expect(stored.body.total).toBe(1);
  });

  it('but no other criteria find a Patient for it: the INS of an opposed record, a name', async () => {
    for (const conditional of [`Patient?identifier=${INS}|${x.otherNir}`, `Patient?family=Deposee-${RUN}`]) {
      const doc = await send('POST', 'DocumentReference', tok.engine, { ...document(x.patient, REPORT, ref(x.org)), subject: { reference: conditional } });
      expect([conditional, doc.status]).toEqual([conditional, 412]);
      const bundle = await send('POST', '', tok.engine, pdsmProvideBundle({ subject: conditional, uniqueId, text: `refused-${RUN}` }));
      expect([conditional, bundle.status]).toEqual([conditional, expect.any(Number)]);
      expect(bundle.status).toBeGreaterThanOrEqual(400);
      expect(JSON.stringify(bundle.body.issue)).toContain('XDSUnknownPatientId');
    }
  });
});

describe('a Subscription on a type its writer cannot read is refused (403), nothing stored', () => {
  const subscription = (criteria: string) => ({
    resourceType: 'Subscription', status: 'requested', reason: `probe ${RUN}`, criteria,
    channel: { type: 'rest-hook', endpoint: `https://receiver.example/${RUN}`, payload: 'application/fhir+json' },
  });
  it.each([
    ['a catalogue application, Patient', () => tok.catalogue, 'Patient?active=true', /Patient is closed to them: A system that deposits no document reads no Patient/],
    ['a catalogue application, documents', () => tok.catalogue, 'DocumentReference?status=current', /DocumentReference is closed to them: Systems do not read DocumentReference/],
    ['an integration engine, Patient by INS', () => tok.engine, lookup(x.nir), /Patient is closed to them: A system finds the patient/],
    ['an integration engine, Consents', () => tok.engine, 'Consent?status=active', /Consent is closed to them/],
    ['an administrator, documents', () => tok.admin, 'DocumentReference?status=current', /Administrators do not read DocumentReference/],
  ])('%s', async (_who, token, criteria, why) => {
    const created = await send('POST', 'Subscription', token(), subscription(criteria));
    expect([criteria, created.status]).toEqual([criteria, 403]);
    expect(created.body.resourceType).toBe('OperationOutcome');
    expect(created.body.issue[0].diagnostics).toMatch(why);
  });

  it('also when an allowed Subscription is changed to such criteria; nothing was stored', async () => {
    const allowed = await send('POST', 'Subscription', tok.engine, subscription(`Communication?subject=${ref(x.patient)}`));
    expect(allowed.status).toBe(201);
    const changed = await send('PUT', `Subscription/${allowed.body.id}`, tok.engine, { ...subscription('DocumentReference?status=current'), id: allowed.body.id });
    expect(changed.status).toBe(403);
    const stored = await get(`Subscription?_count=500`);
    const criteria = (stored.body.entry ?? []).map((e: Json) => e.resource).filter((s: Json) => s.reason === `probe ${RUN}`).map((s: Json) => s.criteria);
    expect(criteria).toEqual([`Communication?subject=${ref(x.patient)}`]);
  });
});

describe("a system reads back, changes and deletes its own Subscriptions, and nobody else's (decision 010, amendment)", () => {
  const subscription = (tag: string) => ({
    resourceType: 'Subscription', status: 'requested', reason: `own ${RUN} ${tag}`, criteria: `Communication?subject=${ref(x.patient)}`,
    channel: { type: 'rest-hook', endpoint: `https://receiver.example/${RUN}/${tag}`, payload: 'application/fhir+json', header: [`X-Secret: ${tag}-${RUN}`] },
  });
  const own: Json = {};
  beforeAll(async () => {
    own.engine = (await send('POST', 'Subscription', tok.engine, subscription('engine'))).body;
    own.insurer = (await send('POST', 'Subscription', tok.insurer, subscription('insurer'))).body;
    expect([own.engine.resourceType, own.insurer.resourceType]).toEqual(['Subscription', 'Subscription']);
  });

  it('its own by id, version, history, search and count, with its headers', async () => {
    const read = await get(`Subscription/${own.engine.id}`, tok.engine);
    expect(read.status).toBe(200);
    expect(read.body.channel.header).toEqual([`X-Secret: engine-${RUN}`]);
    expect((await get(`Subscription/${own.engine.id}/_history/1`, tok.engine)).status).toBe(200);
    // the dispatcher may have made version 2 meanwhile (requested → active): every version is its own
    const history = (await get(`Subscription/${own.engine.id}/_history`, tok.engine)).body;
    expect(history.total).toBeGreaterThanOrEqual(1);
    expect(history.entry.map((e: Json) => e.resource.id)).toEqual(Array(history.total).fill(own.engine.id));
    const found = await get('Subscription?_count=500', tok.engine);
    expect(found.status).toBe(200);
    const ids = found.body.entry.map((e: Json) => e.resource.id);
    expect(ids).toContain(own.engine.id);
    expect(ids).not.toContain(own.insurer.id);
    expect((await get(`Subscription?_id=${own.engine.id}&_summary=count`, tok.engine)).body.total).toBe(1);
  });

  it.each([
    ['another system', () => tok.insurer, () => own.engine],
    ['the first system, of the other', () => tok.engine, () => own.insurer],
    ['a catalogue application', () => tok.catalogue, () => own.engine],
  ])("%s: another's is 404 like an unknown id, never found nor counted", async (_who, token, sub) => {
    const unknown = await get(`Subscription/${crypto.randomUUID()}`, token());
    const hidden = await get(`Subscription/${sub().id}`, token());
    expect([unknown.status, hidden.status]).toEqual([404, 404]);
    expect(hidden.body.issue.map((i: Json) => i.code)).toEqual(unknown.body.issue.map((i: Json) => i.code));
    expect((await get(`Subscription/${sub().id}/_history/1`, token())).status).toBe(404);
    expect((await get(`Subscription?_id=${sub().id}&_summary=count`, token())).body.total).toBe(0);
    const all = await get('Subscription?_count=500', token());
    expect(all.text).not.toContain(sub().id);
    expect(all.text).not.toContain(`X-Secret: ${sub() === own.engine ? 'engine' : 'insurer'}-${RUN}`);
  });

  it('changes and deletes its own; another system cannot change or delete it', async () => {
    const mine = (await send('POST', 'Subscription', tok.engine, subscription('changed'))).body;
    const hijack = await send('PUT', `Subscription/${mine.id}`, tok.insurer, { ...mine, channel: { ...mine.channel, endpoint: 'https://attacker.example/' } });
    expect([403, 404]).toContain(hijack.status);
    // a deletion of what the caller does not see answers as for an unknown id, and deletes nothing
    const unknownDelete = await send('DELETE', `Subscription/${crypto.randomUUID()}`, tok.insurer);
    expect((await send('DELETE', `Subscription/${mine.id}`, tok.insurer)).status).toBe(unknownDelete.status);
    expect((await get(`Subscription/${mine.id}`, tok.engine)).body.channel.endpoint).toBe(`https://receiver.example/${RUN}/changed`);
    const off = await send('PUT', `Subscription/${mine.id}`, tok.engine, { ...mine, status: 'off' });
    expect(off.status).toBe(200);
    expect((await get(`Subscription/${mine.id}`, tok.engine)).body).toMatchObject({ status: 'off', channel: { endpoint: `https://receiver.example/${RUN}/changed` } });
    expect((await send('DELETE', `Subscription/${mine.id}`, tok.engine)).status).toBe(200);
    expect((await get(`Subscription/${mine.id}`, tok.engine)).status).toBe(410);
  });

  it('under scopes that do not read Subscription, none of its own either', async () => {
    const narrow = await mint(ref(x.engine), 'system/Communication.cruds');
    expect((await get(`Subscription/${own.engine.id}`, narrow)).status).not.toBe(200);
    const search = await get('Subscription', narrow);
    expect(search.text).not.toContain(own.engine.id);
  });
});

describe('a system writes a List only as the SubmissionSet or Folder of a deposit', () => {
  const list = (code?: string) => ({
    resourceType: 'List', status: 'current', mode: 'working', title: `liste-${RUN}`, subject: { reference: ref(x.patient) },
    ...(code ? { code: { coding: [{ system: MHD_LIST_TYPES, code }] } } : {}),
  });
  it('a plain List is refused, alone or in a transaction; nothing is written', async () => {
    for (const body of [list(), { ...list(), code: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/list-example-use-codes', code: 'worklist' }] } }]) {
      const res = await send('POST', 'List', tok.engine, body);
      expect(res.status).toBe(403);
      expect(res.body.issue[0].diagnostics).toMatch(/^A system writes a List only as the SubmissionSet or Folder of a deposit/);
      const tx = await send('POST', '', tok.engine, { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: body, request: { method: 'POST', url: 'List' } }] });
      expect(tx.status).toBe(403);
    }
    expect((await get(`List?subject=${ref(x.patient)}&title=liste-${RUN}&_summary=count`)).body.total).toBe(0);
  });

  it('a SubmissionSet is written as before', async () => {
    const res = await send('POST', 'List', tok.engine, { ...list('submissionset'), identifier: [{ system: 'urn:ietf:rfc:3986', value: uniqueId() }] });
    expect([res.status, res.text]).toEqual([201, expect.any(String)]);
  });
});

describe("a Binary's record is a Patient of this server", () => {
  it('a securityContext under another base URL is no record here: a professional of the record may not write it', async () => {
    const gp = await create({ resourceType: 'Practitioner', name: [{ family: `Medecin-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
    const gpToken = await mint(ref(gp));
    await create(consent(x.patient, ref(gp), { type: 'permit', actor: [ircp(ref(gp))] }), gpToken);
    const binary = (reference: string) => ({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference }, data: Buffer.from(`contenu-${RUN}`).toString('base64') });
    const local = await send('POST', 'Binary', gpToken, binary(`${t.base}/${ref(x.patient)}`));
    expect([local.status, local.text]).toEqual([201, expect.any(String)]);
    const foreign = await send('POST', 'Binary', gpToken, binary(`https://other-server.example/fhir/${ref(x.patient)}`));
    expect(foreign.status).toBe(403);
    expect(foreign.body.issue[0].diagnostics).toMatch(/outside a patient record is written by administrators/);
    // written by the test client, it is outside every record: the patient does not read it as theirs
    const stored = await create(binary(`https://other-server.example/fhir/${ref(x.patient)}`));
    const rows = ((await t.running!.ctx.db.knex.raw(`SELECT compartment FROM resource WHERE resource_type = 'Binary' AND id = ?`, [stored.id])) as { rows: Json[] }).rows;
    expect(rows).toEqual([{ compartment: '' }]);
  });
});

import crypto from 'node:crypto';
import { http, startTarget, statementRecorder, Target } from '../harness';

/**
 * The audit trail end to end (docs/decisions/009-audit.md): each interaction of a real
 * actor writes exactly its AuditEvents, refusals are audited, the trail is the patient's,
 * and an audit write that fails takes the access with it. Set-up is done by the
 * unrestricted test client, which is not audited; the trail is read back by it too.
 */
let t: Target;
let counted: ReturnType<typeof statementRecorder>;
beforeAll(async () => {
  t = await startTarget();
  counted = statementRecorder(t);
});
afterAll(() => t.close());

const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
const A03 = 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument';
const RUN = crypto.randomBytes(3).toString('hex');
type Json = Record<string, any>;
const as = (token: string) => ({ authorization: `Bearer ${token}` });
const ref = (r: Json) => `${r.resourceType}/${r.id}`;

async function create(resource: Json, token?: string): Promise<Json> {
  const res = await http(t.base, resource.resourceType, { method: 'POST', json: resource, headers: token ? as(token) : {} });
  if (res.status !== 201) throw new Error(`create ${resource.resourceType} answered ${res.status}: ${res.text}`);
  return res.body;
}
const get = (path: string, token: string, headers: Record<string, string> = {}) => http(t.base, path, { headers: { ...as(token), ...headers } });
const mint = (fhirUser: string | undefined, scope = 'user/*.cruds') => t.issuer!.mint({ sub: fhirUser ?? 'admin-1', ...(fhirUser ? { fhirUser } : {}), scope });

function document(patient: Json, author: string, note = ''): Json {
  return {
    resourceType: 'DocumentReference',
    status: 'current',
    type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
    category: [{ coding: [{ system: A03, code: '10' }] }],
    subject: { reference: ref(patient) },
    author: [{ reference: author }],
    description: `doc ${RUN} ${note}`,
    // content held elsewhere: inline data would make the create an ITI-105 publication, a Binary written with it
    content: [{ attachment: { contentType: 'text/plain', url: 'https://documents.example/content' } }],
  };
}

const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  const doctor = async (family: string) => {
    const p = await create({ resourceType: 'Practitioner', name: [{ given: ['Paul'], family: `${family}-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
    return p;
  };
  x.gp = await doctor('Martin');
  x.stranger = await doctor('Urgentiste');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  x.d1 = await create(document(x.p1, ref(x.gp), 'one'));
  x.d2 = await create(document(x.p1, ref(x.gp), 'two'));
  x.p2doc = await create(document(x.p2, ref(x.gp), 'other'));
  tok.gp = await mint(ref(x.gp));
  tok.stranger = await mint(ref(x.stranger));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  const ircp = { role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: ref(x.gp) } };
  await create({
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: ref(x.p1) },
    dateTime: new Date().toISOString(),
    performer: [{ reference: ref(x.gp) }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: { type: 'permit', actor: [ircp] },
  });
});

/** Every AuditEvent written while `fn` ran (read by the test client: reading the trail is not audited). */
async function eventsDuring<T>(fn: () => Promise<T>): Promise<{ result: T; events: Json[] }> {
  const before = new Set(await allEventIds());
  const result = await fn();
  const all = await http(t.base, 'AuditEvent?_count=1000&_sort=date');
  expect(all.status).toBe(200);
  const events = (all.body.entry ?? []).map((e: Json) => e.resource).filter((e: Json) => !before.has(e.id));
  return { result, events };
}
async function allEventIds(): Promise<string[]> {
  const res = await http(t.base, 'AuditEvent?_count=1000&_elements=id');
  expect(res.status).toBe(200);
  expect(res.body.link?.find((l: Json) => l.relation === 'next')).toBeUndefined();
  return (res.body.entry ?? []).map((e: Json) => e.resource.id);
}
const entities = (e: Json) => (e.entity ?? []).map((x: Json) => x.what?.reference ?? `query:${Buffer.from(x.query ?? '', 'base64').toString()}`);
const user = (e: Json) => e.agent.find((a: Json) => a.requestor);

describe('each interaction writes its AuditEvents', () => {
  it('a read: one event naming the professional (display, profession, address), the patient and the document', async () => {
    const { result, events } = await eventsDuring(() => get(`DocumentReference/${x.d1.id}`, tok.gp));
    expect(result.status).toBe(200);
    expect(events).toHaveLength(1);
    const [e] = events;
    expect(e.subtype[0].code).toBe('read');
    expect(e).toMatchObject({ action: 'R', outcome: '0' });
    expect(user(e).who).toMatchObject({ reference: ref(x.gp), display: `Paul Martin-${RUN}` });
    expect(user(e).role).toEqual([{ coding: [{ system: G15, code: '10' }] }]);
    expect(user(e).network.address).toMatch(/127\.0\.0\.1/);
    expect(entities(e)).toEqual([ref(x.p1), ref(x.d1)]);
  });

  it('a search returning two documents of one patient: one event with the patient, both documents and the query', async () => {
    const query = `patient=${x.p1.id}&description=doc ${RUN}`;
    const { result, events } = await eventsDuring(() => get(`DocumentReference?${query}`, tok.gp));
    expect(result.body.entry).toHaveLength(2);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: 'E', outcome: '0' });
    expect(events[0].subtype[0].code).toBe('search-type');
    expect(entities(events[0]).sort()).toEqual([ref(x.p1), ref(x.d1), ref(x.d2), `query:${new URLSearchParams(query).toString()}`].sort());
  });

  it('create, update and delete: one event each, naming the version written', async () => {
    const created = await eventsDuring(() => http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, ref(x.gp), 'created'), headers: as(tok.gp) }));
    expect(created.result.status).toBe(201);
    const id = created.result.body.id;
    expect(created.events.map((e) => [e.action, entities(e)])).toEqual([['C', [ref(x.p1), `DocumentReference/${id}/_history/1`]]]);

    // (a stored document's PUT changes its status, labels or archiving only: decision 029)
    const updated = await eventsDuring(() => http(t.base, `DocumentReference/${id}`, { method: 'PUT', json: { ...document(x.p1, ref(x.gp), 'created'), id, status: 'superseded' }, headers: as(tok.gp) }));
    expect(updated.result.status).toBe(200);
    expect(updated.events.map((e) => [e.action, e.subtype[0].code, entities(e)])).toEqual([['U', 'update', [ref(x.p1), `DocumentReference/${id}/_history/2`]]]);

    const deleted = await eventsDuring(() => http(t.base, `DocumentReference/${id}`, { method: 'DELETE', headers: as(tok.gp) }));
    expect(deleted.result.status).toBe(200);
    expect(deleted.events.map((e) => [e.action, entities(e)])).toEqual([['D', [ref(x.p1), `DocumentReference/${id}/_history/3`]]]);
  });

  it('a transaction of two entries: two events, one per entry', async () => {
    const entry = ['a', 'b'].map((n) => ({ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: document(x.p1, ref(x.gp), `tx-${n}`), request: { method: 'POST', url: 'DocumentReference' } }));
    const { result, events } = await eventsDuring(() => http(t.base, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry }, headers: as(tok.gp) }));
    expect(result.status).toBe(200);
    expect(events).toHaveLength(2);
    const written = result.body.entry.map((e: Json) => e.response.location);
    expect(events.map((e) => entities(e)[1]).sort()).toEqual([...written].sort());
    expect(events.every((e) => e.action === 'C' && entities(e)[0] === ref(x.p1))).toBe(true);
  });

  it('break-glass: purposeOfUse ETREAT with the reason', async () => {
    const { result, events } = await eventsDuring(() => get(`DocumentReference?patient=${x.p2.id}`, tok.stranger, { 'x-break-glass': 'unconscious in the emergency room' }));
    expect(result.status).toBe(200);
    expect(events).toHaveLength(1);
    expect(user(events[0]).purposeOfUse).toEqual([{ coding: [expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT' })], text: 'unconscious in the emergency room' }]);
    expect(entities(events[0])).toContain(ref(x.p2doc));
  });

  it("the patient reading their own trail is not audited", async () => {
    const { result, events } = await eventsDuring(() => get(`AuditEvent?patient=Patient/${x.p1.id}`, tok.p1));
    expect(result.status).toBe(200);
    expect(events).toHaveLength(0);
  });

  it("an administrator reading a record's trail is audited, in that record, naming the events read", async () => {
    const { result: search, events } = await eventsDuring(() => get(`AuditEvent?patient=Patient/${x.p1.id}&_count=5`, tok.admin));
    expect(search.status).toBe(200);
    const read = (search.body.entry ?? []).map((e: Json) => `AuditEvent/${e.resource.id}`);
    expect(read.length).toBeGreaterThan(0);
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event.subtype[0].code).toBe('search-type');
    expect(user(event).who.identifier).toBeDefined();
    expect(entities(event)).toEqual(expect.arrayContaining([ref(x.p1), ...read]));
    // a read by id too; and reading it again writes one more event, not a cascade
    const { result: one, events: more } = await eventsDuring(() => get(read[0], tok.admin));
    expect(one.status).toBe(200);
    expect(more).toHaveLength(1);
    expect(entities(more[0])).toEqual([ref(x.p1), read[0]]);
    // the patient sees the investigator's reads in their trail, and is not sent a notice of them
    const mine = await get(`AuditEvent/${more[0].id}`, tok.p1);
    expect(mine.status).toBe(200);
    const notices = await http(t.base, `Communication?recipient=Patient/${x.p1.id}&_count=1000`);
    expect(notices.text).not.toContain(more[0].id);
  });
});

describe('refused access is audited, in a statement of its own', () => {
  it('a record closed to a professional (403): outcome 4 with the reason, in the record of the patient', async () => {
    const { result, events } = await eventsDuring(() => get(`DocumentReference?patient=${x.p2.id}`, tok.gp));
    expect(result.status).toBe(403);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: '4', outcomeDesc: result.body.issue[0].diagnostics });
    expect(entities(events[0])[0]).toBe(ref(x.p2));
  });

  it('a resource hidden behind a 404: outcome 4, the patient whose record it is', async () => {
    const { result, events } = await eventsDuring(() => get(`DocumentReference/${x.p2doc.id}`, tok.p1));
    expect(result.status).toBe(404);
    expect(events).toHaveLength(1);
    expect(events[0].outcome).toBe('4');
    expect(entities(events[0])).toEqual([ref(x.p2), ref(x.p2doc)]);
    // a missing id is not a refusal
    expect((await eventsDuring(() => get(`DocumentReference/${crypto.randomUUID()}`, tok.p1))).events).toHaveLength(0);
  });
});

describe('the trail', () => {
  it('cannot be written, changed or deleted through the API', async () => {
    const event = { resourceType: 'AuditEvent', type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' }, recorded: new Date().toISOString(), agent: [{ who: { reference: ref(x.gp) }, requestor: true }], source: { observer: { display: 'x' } } };
    for (const token of [tok.gp, tok.p1, tok.admin]) {
      const res = await http(t.base, 'AuditEvent', { method: 'POST', json: event, headers: as(token) });
      expect(res.status).toBe(403);
      expect(res.body.issue[0].diagnostics).toMatch(/AuditEvent/);
    }
    // an event of p1's record: one p1 and an administrator can see
    const id = (await get(`AuditEvent?patient=Patient/${x.p1.id}`, tok.p1)).body.entry[0].resource.id;
    for (const token of [tok.p1, tok.admin]) {
      expect((await http(t.base, `AuditEvent/${id}`, { method: 'PUT', json: { ...event, id }, headers: as(token) })).status).toBe(403);
      expect((await http(t.base, `AuditEvent/${id}`, { method: 'DELETE', headers: as(token) })).status).toBe(403);
    }
    expect((await http(t.base, `AuditEvent/${id}`)).status).toBe(200);
  });

  it('the patient reads their own trail, with who accessed what and when, and not another patient’s', async () => {
    const mine = await get(`AuditEvent?patient=Patient/${x.p1.id}&_count=100`, tok.p1);
    expect(mine.status).toBe(200);
    const events = mine.body.entry.map((e: Json) => e.resource);
    expect(events.some((e: Json) => user(e).who.display === `Paul Martin-${RUN}` && e.subtype[0].code === 'read')).toBe(true);
    expect(events.every((e: Json) => entities(e)[0] === ref(x.p1))).toBe(true);
    // the refused attempt of p1 on p2's document is in p2's trail, not readable by p1
    const other = await get(`AuditEvent?patient=Patient/${x.p2.id}`, tok.p1);
    expect(other.body.entry ?? []).toHaveLength(0);
    const everything = await get('AuditEvent?_count=100', tok.p1);
    expect((everything.body.entry ?? []).every((e: Json) => entities(e.resource)[0] === ref(x.p1))).toBe(true);
  });

  it("names another record's patient to nobody on the patient's side: p2 reads that p1's attempt was refused, not who made it", async () => {
    const trail = await get(`AuditEvent?patient=Patient/${x.p2.id}&_count=100`, tok.p2);
    expect(trail.status).toBe(200);
    const events = (trail.body.entry ?? []).map((e: Json) => e.resource);
    const refused = events.filter((e: Json) => e.outcome !== '0');
    expect(refused.length).toBeGreaterThan(0);
    expect(JSON.stringify(events)).not.toContain(x.p1.id);
    expect(refused.some((e: Json) => e.agent.some((a: Json) => a.who?.display === 'Withheld from this reader'))).toBe(true);
    // nor their name, to anyone: the patient's side is named by reference only
    const asAdmin = await get(`AuditEvent?patient=Patient/${x.p2.id}&_count=100`, tok.admin);
    expect(JSON.stringify(asAdmin.body)).not.toContain(x.p1.name[0].family);
  });

  it('a professional does not read the trail of their patients', async () => {
    const res = await get(`AuditEvent?patient=Patient/${x.p1.id}`, tok.gp);
    expect(res.status).toBe(403);
    const [id] = (await get(`AuditEvent?patient=Patient/${x.p1.id}`, tok.p1)).body.entry.map((e: Json) => e.resource.id);
    expect((await get(`AuditEvent/${id}`, tok.gp)).status).toBe(404);
  });

  it('serves (and indexes) only the search parameters of decision 009', async () => {
    const meta = await http(t.base, 'metadata');
    const audit = meta.body.rest[0].resource.find((r: Json) => r.type === 'AuditEvent');
    expect(audit.searchParam.map((p: Json) => p.name).sort()).toEqual(['_id', '_lastUpdated', '_security', '_tag', 'action', 'agent', 'date', 'entity', 'outcome', 'patient', 'purpose', 'subtype', 'type']);
    const strict = await http(t.base, 'AuditEvent?entity-type=2', { headers: { ...as(tok.admin), prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
    // break-glass accesses are found by their purpose
    const urgent = await http(t.base, `AuditEvent?patient=Patient/${x.p2.id}&purpose=http://terminology.hl7.org/CodeSystem/v3-ActReason|ETREAT`, { headers: as(tok.admin) });
    expect(urgent.status).toBe(200);
    expect(urgent.body.entry.length).toBeGreaterThan(0);
    expect(urgent.body.entry.every((e: Json) => e.resource.purposeOfEvent?.[0]?.coding?.[0]?.code === 'ETREAT')).toBe(true);
  });

  it('is searchable by agent, entity, subtype, action and outcome', async () => {
    const q = (query: string) => http(t.base, `AuditEvent?${query}`).then((r) => (r.body.entry ?? []).map((e: Json) => e.resource));
    expect((await q(`agent=${ref(x.gp)}&subtype=read`)).length).toBeGreaterThan(0);
    expect((await q(`entity=${ref(x.d1)}`)).every((e: Json) => entities(e).includes(ref(x.d1)))).toBe(true);
    expect((await q(`patient=${ref(x.p2)}&outcome=4`)).length).toBeGreaterThanOrEqual(1);
    expect((await q(`agent=${ref(x.gp)}&action=C`)).every((e: Json) => e.action === 'C')).toBe(true);
  });
});

describe('cost and atomicity', () => {
  it('an audited read is its statement and one insert; an audited create writes its version and events in one statement', async () => {
    const read = await counted(() => get(`DocumentReference/${x.d1.id}`, tok.gp));
    expect(read.result.status).toBe(200);
    const kinds = read.sql.map((s) => s.trim().split(/\s+/)[0].toUpperCase());
    // the caller's facts (actor, roles, consents) are read first, then the read, then the events
    expect(kinds.slice(-2)).toEqual(['SELECT', 'WITH']);
    expect(read.sql.at(-1)).toMatch(/INSERT INTO resource_history/);
    // the patient's notification preference comes with the record's facts, not from a statement of its own
    expect(read.sql.filter((s) => /'Basic'/.test(s) && !/'Consent'/.test(s))).toEqual([]);
    const created = await counted(() => http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, ref(x.gp), 'counted'), headers: as(tok.gp) }));
    expect(created.result.status).toBe(201);
    const writes = created.sql.filter((s) => /INSERT INTO resource_history/.test(s));
    expect(writes).toHaveLength(1);
    // its references are resolved first (docs/decisions/014-integrity.md): checks and write commit together
    expect(created.sql.some((s) => /^\s*BEGIN/i.test(s))).toBe(true);
  });

  it('an audit write that fails fails the access: nothing is written, nothing is answered', async () => {
    const knex = t.running!.ctx.db.knex;
    // a real failing statement: the trail's rows are refused by a constraint while it stands
    await knex.raw(`ALTER TABLE resource ADD CONSTRAINT audit_refused CHECK (resource_type <> 'AuditEvent') NOT VALID`);
    try {
      const before = (await allEventIds()).length;
      const created = await http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, ref(x.gp), 'rolled-back'), headers: as(tok.gp) });
      expect(created.status).toBe(500);
      const updated = await http(t.base, `DocumentReference/${x.d2.id}`, { method: 'PUT', json: { ...x.d2, status: 'superseded' }, headers: as(tok.gp) });
      expect(updated.status).toBe(500);
      const read = await get(`DocumentReference/${x.d1.id}`, tok.gp);
      expect(read.status).toBe(500);
      expect(read.text).not.toContain(x.d1.id);
      // nothing written: no document, no new version, no event
      const found = await http(t.base, `DocumentReference?description=rolled-back`);
      expect(found.body.entry ?? []).toHaveLength(0);
      expect((await http(t.base, `DocumentReference/${x.d2.id}`)).body.meta.versionId).toBe('1');
      expect((await allEventIds()).length).toBe(before);
    } finally {
      await knex.raw('ALTER TABLE resource DROP CONSTRAINT audit_refused');
    }
    expect((await get(`DocumentReference/${x.d1.id}`, tok.gp)).status).toBe(200);
  });
});

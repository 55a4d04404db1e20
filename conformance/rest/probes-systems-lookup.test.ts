import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';
import { DEVICE_TYPES, G15, INS_NIR as INS, Json, MHD_LIST_TYPES, ref, requests } from '../accessFixtures';

/**
 * Probes from outside of what a depositing system reaches of Patient and around it
 * (docs/decisions/035-what-a-depositing-system-reads.md and its amendments), and of what a
 * deleted record leaves in the Groups (docs/decisions/030-groups.md, amendments): the ways
 * in that the decision's own tests do not walk — the record operations on `Patient/[id]`,
 * variants of the INS lookup, a page link minted for another caller, conditional writes
 * whose criteria chain through Patient, a Subscription's criteria as the dispatcher reads
 * them, Lists and Binaries written by variants of the accepted shapes.
 */
const RUN = crypto.randomBytes(4).toString('hex');
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());
const NONE = '00000000-0000-4000-8000-000000000000';
const LOOKUP_REFUSAL = /^A system finds the patient it deposits for only by its INS/;
const { create, get, send, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};
/** Did the answer carry a trait of the patient the system must not read? */
const traits = (text: string) => [`Deposee-${RUN}`, '1981-03-04', `Ville-${RUN}`, '0611111111'].filter((w) => text.includes(w));

beforeAll(async () => {
  x.org = await create({ resourceType: 'Organization', name: `Clinique-${RUN}` });
  const patient = (family: string, nir: string, birthDate: string) =>
    create(
      withIns(
        {
          resourceType: 'Patient', name: [{ family, given: ['Alice'] }], birthDate, gender: 'female',
          telecom: [{ system: 'phone', value: '0611111111' }], address: [{ city: `Ville-${RUN}` }], managingOrganization: { reference: ref(x.org) },
        },
        INS,
        nir,
      ),
    );
  x.nir = freshNir();
  x.patient = await patient(`Deposee-${RUN}`, x.nir, '1981-03-04');
  x.goneNir = freshNir();
  x.gone = await patient(`Supprimee-${RUN}`, x.goneNir, '1970-05-05');
  const device = (code: string) => create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: DEVICE_TYPES, code }] } });
  x.engine = await device('integration-engine');
  x.insurer = await device('health-insurer');
  x.catalogue = await device('catalogue-application');
  x.gp = await create({ resourceType: 'Practitioner', name: [{ family: `Medecin-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
  tok.insurer = await mint(ref(x.insurer), 'system/*.cruds');
  tok.catalogue = await mint(ref(x.catalogue), 'system/*.cruds');
  tok.gp = await mint(ref(x.gp));
  tok.admin = await mint(undefined, 'admin');
  tok.gone = await mint(ref(x.gone), 'patient/*.cruds');
});

describe('the record operations tell a system nothing of a Patient id', () => {
  it.each([
    ['$oppose', 'POST'],
    ['$activate', 'POST'],
    ['$close?mode=archive', 'POST'],
    ['$close?mode=delete', 'POST'],
    ['$reopen', 'POST'],
  ])('%s: the same 403 for an id holding a record and for one that does not', async (operation) => {
    for (const who of ['engine', 'insurer', 'catalogue', 'gp']) {
      const known = await send('POST', `Patient/${x.patient.id}/${operation}`, tok[who], { resourceType: 'Parameters' });
      const unknown = await send('POST', `Patient/${NONE}/${operation}`, tok[who], { resourceType: 'Parameters' });
      expect([who, operation, known.status, unknown.status]).toEqual([who, operation, 403, 403]);
      expect(unknown.body.issue[0].diagnostics).toBe(known.body.issue[0].diagnostics);
    }
    // the record is untouched: still open, its Patient at version 1
    expect((await get(ref(x.patient), tok.admin)).body.meta.versionId).toBe('1');
  });

  it('an administrator still learns that an id holds no record (404): they read every Patient', async () => {
    expect((await send('POST', `Patient/${NONE}/$oppose`, tok.admin, { resourceType: 'Parameters' })).status).toBe(404);
  });
});

describe('the INS lookup is the exact shape, nothing near it', () => {
  const I = () => encodeURIComponent(`${INS}|${x.nir}`);
  it('answers the reduced Patient, also with _format and _pretty repeated or odd', async () => {
    for (const extra of ['', '&_pretty=true', '&_format=json&_format=xml', '&_pretty=maybe']) {
      const res = await get(`Patient?identifier=${I()}${extra}`, tok.engine);
      expect([extra, res.status]).toEqual([extra, 200]);
      expect(res.body.entry.map((e: Json) => e.resource.id)).toEqual([x.patient.id]);
      expect(traits(res.text)).toEqual([]);
    }
  });

  it('any variant is the 403 that names the lookup', async () => {
    for (const query of [
      `identifier=${I()}&identifier=${I()}`,
      `identifier:exact=${I()}`,
      `Identifier=${I()}`,
      `identifier=${encodeURIComponent(`${INS.toUpperCase()}|${x.nir}`)}`,
      `identifier=${encodeURIComponent(`${INS}|${x.nir} `)}`,
      `identifier=${encodeURIComponent(`${INS}|${x.nir.slice(0, 13)}`)}`,
      `identifier=${I()}&_total=accurate`,
      `identifier=${I()}&_sort=family`,
      `identifier=${I()}&_count=0`,
      `identifier=${I()}&_summary=true`,
      `identifier=${I()}&_contained=true`,
      `identifier=${I()}&_elements=`,
    ]) {
      const res = await get(`Patient?${query}`, tok.engine);
      expect([query, res.status]).toEqual([query, 403]);
      expect(res.body.issue[0].diagnostics).toMatch(LOOKUP_REFUSAL);
    }
  });

  it('POST _search: the lookup in the body alone; split between URL and body, or doubled, refused', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const post = (path: string, body: string) => http(t.base, path, { method: 'POST', body, headers: { authorization: `Bearer ${tok.engine}`, ...form } });
    const alone = await post('Patient/_search', `identifier=${I()}`);
    expect(alone.status).toBe(200);
    expect(alone.body.entry.map((e: Json) => e.resource.id)).toEqual([x.patient.id]);
    for (const [path, body] of [
      ['Patient/_search?_elements=name', `identifier=${I()}`],
      [`Patient/_search?identifier=${I()}`, '_elements=name'],
      [`Patient/_search?identifier=${I()}`, `identifier=${I()}`],
    ]) {
      const res = await post(path, body);
      expect([path, body, res.status]).toEqual([path, body, 403]);
      expect(traits(res.text)).toEqual([]);
    }
  });

  it("a page link minted for the administrator's Patient search is not the system's way in", async () => {
    await create(withIns({ resourceType: 'Patient', name: [{ family: `Autre-${RUN}` }] }, INS, freshNir()));
    const page = await get('Patient?_count=1', tok.admin);
    const next = page.body.link.find((l: Json) => l.relation === 'next').url as string;
    for (const who of ['engine', 'catalogue']) {
      const res = await get(next.slice(t.base.length + 1), tok[who]);
      expect([who, res.status]).toEqual([who, 403]);
      expect(traits(res.text)).toEqual([]);
    }
  });
});

describe('conditional writes whose criteria reach through Patient find nothing for a system', () => {
  const message = () => ({
    resourceType: 'Communication', status: 'in-progress', subject: { reference: ref(x.patient) }, sender: { reference: ref(x.engine) },
    recipient: [{ reference: ref(x.patient) }], payload: [{ contentString: `c-${RUN}` }],
  });
  it('If-None-Exist chained on the birth date: created whether the date is right or not (no oracle)', async () => {
    const first = await send('POST', 'Communication', tok.engine, message());
    expect(first.status).toBe(201);
    for (const criteria of ['subject:Patient.birthdate=1981-03-04', 'subject:Patient.birthdate=1999-01-01', `subject.family=Deposee-${RUN}`, `subject:Patient.identifier=${INS}|${x.nir}`]) {
      const res = await send('POST', 'Communication', tok.engine, message(), { 'if-none-exist': criteria });
      expect([criteria, res.status]).toEqual([criteria, 201]);
    }
  });

  it('a conditional delete or patch of Patient by a system changes nothing', async () => {
    for (const criteria of [`identifier=${INS}|${x.nir}`, `family=Deposee-${RUN}`]) {
      await send('DELETE', `Patient?${criteria}`, tok.engine);
      const patch = await http(t.base, `Patient?${criteria}`, {
        method: 'PATCH', body: JSON.stringify([{ op: 'replace', path: '/active', value: false }]),
        headers: { authorization: `Bearer ${tok.engine}`, 'content-type': 'application/json-patch+json' },
      });
      expect([criteria, patch.status]).toEqual([criteria, 404]);
      expect(patch.text.split(`family=Deposee-${RUN}`).join('')).not.toContain(`Deposee-${RUN}`);
    }
    const stored = await get(ref(x.patient), tok.admin);
    expect([stored.status, stored.body.meta.versionId, stored.body.active]).toEqual([200, '1', undefined]);
  });
});

describe("a Subscription's type is read as the dispatcher reads it", () => {
  const subscription = (criteria: string) => ({
    resourceType: 'Subscription', status: 'requested', reason: `probe ${RUN}`, criteria,
    channel: { type: 'rest-hook', endpoint: `https://receiver.example/${RUN}`, payload: 'application/fhir+json' },
  });
  it.each([
    ['an integration engine', 'engine', ' Patient?active=true'],
    ['an integration engine, tab and newline', 'engine', '\n\tPatient?active=true '],
    ['a catalogue application', 'catalogue', ' DocumentReference?status=current'],
    ['a professional', 'gp', ' Group?actual=true'],
  ])('%s: criteria with surrounding whitespace on a closed type are refused', async (_who, who, criteria) => {
    const res = await send('POST', 'Subscription', tok[who], subscription(criteria));
    expect([JSON.stringify(criteria), res.status]).toEqual([JSON.stringify(criteria), 403]);
    expect(res.body.issue[0].diagnostics).toMatch(/^A Subscription's criteria are searched with its owner's access/);
  });

  it('nothing of them was stored', async () => {
    const stored = await get('Subscription?_count=500');
    expect((stored.body.entry ?? []).map((e: Json) => e.resource).filter((s: Json) => s.reason === `probe ${RUN}`)).toEqual([]);
  });
});

describe('a system writes a List only as MHD metadata, by any write', () => {
  const list = (coding?: Json[]) => ({
    resourceType: 'List', status: 'current', mode: 'working', title: `liste-${RUN}`, subject: { reference: ref(x.patient) },
    ...(coding ? { code: { coding } } : {}),
  });
  it('a code of another system, the right code in another case, a conditional create or update: 403', async () => {
    const refused = [
      () => send('POST', 'List', tok.engine, list([{ system: 'http://example.org', code: 'submissionset' }])),
      () => send('POST', 'List', tok.engine, list([{ code: 'submissionset' }])),
      () => send('POST', 'List', tok.engine, list([{ system: MHD_LIST_TYPES, code: 'SubmissionSet' }])),
      () => send('POST', 'List', tok.engine, list(), { 'if-none-exist': `identifier=urn:ietf:rfc:3986|x-${RUN}` }),
      () => send('PUT', `List?identifier=urn:ietf:rfc:3986|y-${RUN}`, tok.engine, list()),
      () => send('POST', '', tok.engine, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: list(), request: { method: 'PUT', url: `List?identifier=urn:ietf:rfc:3986|z-${RUN}` } }] }),
    ];
    for (const [i, write] of refused.entries()) {
      const res = await write();
      expect([i, res.status]).toEqual([i, 403]);
    }
    expect((await get(`List?subject=${ref(x.patient)}&title=liste-${RUN}&_summary=count`)).body.total).toBe(0);
  });

  it('a system that deposits nothing writes no SubmissionSet either; the insurer does', async () => {
    const ss = () => ({ ...list([{ system: MHD_LIST_TYPES, code: 'submissionset' }]), identifier: [{ system: 'urn:ietf:rfc:3986', value: `urn:oid:1.2.250.1.999.${crypto.randomInt(1e9)}` }] });
    expect((await send('POST', 'List', tok.catalogue, ss())).status).toBe(403);
    expect((await send('POST', 'List', tok.insurer, ss())).status).toBe(201);
  });
});

describe("a Binary's record is named only by a reference to this server's base", () => {
  it('near misses of the base URL leave the Binary outside every record', async () => {
    const binary = (reference: string) => ({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference }, data: Buffer.from(`b-${RUN}`).toString('base64') });
    const host = new URL(t.base);
    for (const base of [`${t.base}X`, `${t.base}/`, `${t.base}/../other`, `${host.protocol}//other-host:${host.port}${host.pathname}`]) {
      const reference = `${base}/${ref(x.patient)}`;
      expect([reference, (await send('POST', 'Binary', tok.engine, binary(reference))).status]).toEqual([reference, 403]);
      const stored = await create(binary(reference));
      const rows = ((await t.running!.ctx.db.knex.raw(`SELECT compartment FROM resource WHERE resource_type = 'Binary' AND id = ?`, [stored.id])) as { rows: Json[] }).rows;
      expect([reference, rows]).toEqual([reference, [{ compartment: '' }]]);
    }
  });
});

describe('a deleted record leaves no Group naming it, by identifier or characteristic either', () => {
  it('members by INS, characteristics valued with the Patient: gone from every version and from member:identifier', async () => {
    const group = await create(
      {
        resourceType: 'Group', type: 'person', actual: true, quantity: 3, name: `cohorte-${RUN}`,
        member: [
          { entity: { reference: ref(x.patient) } },
          { entity: { reference: ref(x.gone) } },
          { entity: { identifier: { system: INS, value: x.goneNir }, display: `Supprimee-${RUN}` } },
        ],
        characteristic: [{ code: { text: 'suivi' }, valueReference: { reference: ref(x.gone) }, exclude: false }],
      },
      tok.admin,
    );
    expect((await send('PUT', `Group/${group.id}`, tok.admin, { ...group, name: `cohorte2-${RUN}` })).status).toBe(200);
    expect((await get(`Group?member:identifier=${INS}|${x.goneNir}&_summary=count`, tok.admin)).body.total).toBe(1);
    const deleted = await send('POST', `Patient/${x.gone.id}/$close?mode=delete`, tok.gone, { resourceType: 'Parameters' });
    expect([deleted.status, deleted.text]).toEqual([200, expect.any(String)]);
    const current = await get(`Group/${group.id}`, tok.admin);
    expect(current.body.member).toEqual([{ entity: { reference: ref(x.patient) } }]);
    expect(current.body.characteristic).toBeUndefined();
    expect(current.body.quantity).toBe(1);
    for (const path of [`Group/${group.id}/_history/1`, `Group/${group.id}/_history/2`, `Group/${group.id}/_history`]) {
      const res = await get(path, tok.admin);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, [x.gone.id, x.goneNir, `Supprimee-${RUN}`].filter((w) => res.text.includes(w))]).toEqual([path, []]);
    }
    expect((await get(`Group?member:identifier=${INS}|${x.goneNir}&_summary=count`, tok.admin)).body.total).toBe(0);
    expect((await get(`Group?member=${ref(x.gone)}&_summary=count`, tok.admin)).body.total).toBe(0);
    const rows = ((await t.running!.ctx.db.knex.raw(
      `SELECT count(*)::int AS n FROM idx_reference WHERE resource_type = 'Group' AND resource_id = ? AND (target_id = ? OR identifier_value = ?)`,
      [group.id, x.gone.id, x.goneNir],
    )) as { rows: Json[] }).rows;
    expect(rows[0].n).toBe(0);
  });
});

describe('a deleted record leaves no Subscription naming it by its INS', () => {
  it('criteria chained on the INS are deleted with the record, as those naming its id', async () => {
    const nir = freshNir();
    const holder = await create(withIns({ resourceType: 'Patient', name: [{ family: `Ephemere-${RUN}`, given: ['Bea'] }], birthDate: '1950-01-01', gender: 'male' }, INS, nir));
    const criteria = [
      `Communication?subject=${ref(holder)}`,
      `Communication?subject:Patient.identifier=${INS}|${nir}`,
      `Communication?patient.identifier=${nir}`,
      `Communication?patient.identifier=${INS}|${freshNir()},${INS}|${nir}`,
    ];
    const reason = `ephemere ${RUN}`;
    for (const c of criteria) {
      const res = await send('POST', 'Subscription', tok.engine, { resourceType: 'Subscription', status: 'requested', reason, criteria: c, channel: { type: 'rest-hook', endpoint: `https://receiver.example/${RUN}` } });
      expect([c, res.status]).toEqual([c, 201]);
    }
    const kept = await send('POST', 'Subscription', tok.engine, { resourceType: 'Subscription', status: 'requested', reason, criteria: `Communication?patient.identifier=${INS}|${x.nir}`, channel: { type: 'rest-hook', endpoint: `https://receiver.example/${RUN}` } });
    expect(kept.status).toBe(201);
    const holderToken = await mint(ref(holder), 'patient/*.cruds');
    expect((await send('POST', `Patient/${holder.id}/$close?mode=delete`, holderToken, { resourceType: 'Parameters' })).status).toBe(200);
    const stored = await get('Subscription?_count=500');
    const left = (stored.body.entry ?? []).map((e: Json) => e.resource).filter((s: Json) => s.reason === reason).map((s: Json) => s.criteria);
    expect(left).toEqual([`Communication?patient.identifier=${INS}|${x.nir}`]);
    const rows = ((await t.running!.ctx.db.knex.raw(`SELECT count(*)::int AS n FROM resource_history WHERE resource_type = 'Subscription' AND position(? in body::text) > 0`, [nir])) as { rows: Json[] }).rows;
    expect(rows[0].n).toBe(0);
  });
});


import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { A07, as, consent, document as documentResource, G15, ircp, Json, ref, REPORT, requests } from '../accessFixtures';
import { DMP_NOTIFICATION, NOTIFICATION_PREFERENCE_EXTENSION } from '../../src/audit/notification';
import { digestId, notificationDigest } from '../../scripts/notificationDigest';

/**
 * The patient's side finds and is told only what it is shown (docs/decisions/009-audit.md,
 * amendment of 2026-12-06): a trail search does not match through a value the trail view
 * withholds (an agent, a patient, an entity), whatever the form of the search; the events
 * and notices of accesses to a document hidden from the reader are hidden with it, until
 * the label is removed; the daily digest counts only the accesses every reader of it (the
 * patient, a legal representative) is shown, and a day with none has no digest.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};
const entries = (res: { body: any }) => ((res.body?.entry ?? []) as Json[]).map((e) => e.resource as Json).filter(Boolean);
const total = async (path: string, token: string) => {
  const res = await get(path, token);
  expect([path, res.status]).toEqual([path, 200]);
  return res.body.total as number;
};

beforeAll(async () => {
  x.gp = await create({ resourceType: 'Practitioner', name: [{ given: ['Paul'], family: `Martin-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.minor = await create({ resourceType: 'Patient', name: [{ family: `Mineur-${RUN}` }], birthDate: '2015-01-01' });
  x.parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) }, relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PRN' }] }] });
  tok.gp = await mint(ref(x.gp));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.minor = await mint(ref(x.minor), 'patient/*.cruds');
  tok.parent = await mint(ref(x.parent), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  for (const p of [x.p1, x.minor]) await create(consent(p, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  // refused attempts on the other's record: events filed there, naming an agent its readers may not know
  // (a 404 that hides an existing resource is audited in the record it hides)
  for (const [path, token] of [[ref(x.minor), tok.p1], [`${ref(x.minor)}/_history/1`, tok.p1], [ref(x.p1), tok.parent], [`${ref(x.p1)}/_history/1`, tok.parent]]) {
    expect([path, (await get(path, token)).status]).toEqual([path, 404]);
  }
});

describe('a trail search matches only what the reader is shown', () => {
  it('the investigator finds the refused attempts (the searches below have something to leak)', async () => {
    expect(await total(`AuditEvent?agent=${ref(x.p1)}&patient=${ref(x.minor)}&_summary=count`, tok.admin)).toBeGreaterThan(0);
    expect(await total(`AuditEvent?agent=${ref(x.parent)}&patient=${ref(x.p1)}&_summary=count`, tok.admin)).toBeGreaterThan(0);
    // and the reader is shown those events without who made them
    const events = entries(await get(`AuditEvent?patient=${ref(x.minor)}&outcome=4&_count=500`, tok.parent));
    expect(events.length).toBeGreaterThan(0);
    expect(JSON.stringify(events)).not.toContain(x.p1.id);
  });

  for (const reader of ['parent', 'minor'] as const) {
    it(`the ${reader} finds no event by the other patient's id, by any form of search`, async () => {
      const p1 = ref(x.p1);
      for (const path of [
        `AuditEvent?agent=${p1}&_summary=count`,
        `AuditEvent?agent=${p1}`,
        `AuditEvent?agent=${x.p1.id}&_total=accurate`,
        `AuditEvent?agent:Patient=${x.p1.id}&_total=accurate`,
        `AuditEvent?patient=${p1}&_summary=count`,
        `AuditEvent?patient=${x.p1.id}`,
        `AuditEvent?patient=${p1}&_include=AuditEvent:entity&_total=accurate`,
        `AuditEvent?agent=${p1}&_include=AuditEvent:entity&_total=accurate`,
        `AuditEvent?entity=${p1}&_total=accurate`,
        `AuditEvent?agent:Patient._id=${x.p1.id}&_total=accurate`,
        `AuditEvent?_has:AuditEvent:entity:agent=${p1}&_total=accurate`,
      ]) {
        const res = await get(path, tok[reader]);
        expect([path, res.status, res.body.total, entries(res).length]).toEqual([path, 200, 0, 0]);
      }
      const chained = await get(`Patient?_has:AuditEvent:patient:agent=${p1}&_total=accurate`, tok[reader]);
      expect([chained.status, chained.body.total]).toEqual([200, 0]);
    });

    it(`the ${reader} is refused a sort of the trail by a withheld element`, async () => {
      for (const code of ['agent', 'patient', 'entity', '-agent']) {
        const res = await get(`AuditEvent?_sort=${code}`, tok[reader]);
        expect([code, res.status, res.body.resourceType]).toEqual([code, 400, 'OperationOutcome']);
      }
    });

    it(`the ${reader} still finds the events of their record and of the professional`, async () => {
      expect(await total(`AuditEvent?patient=${ref(x.minor)}&_summary=count`, tok[reader])).toBeGreaterThan(0);
      expect(await total(`AuditEvent?agent=${ref(x.gp)}&_summary=count`, tok[reader])).toBeGreaterThan(0);
      expect(await total(`AuditEvent?patient=${ref(x.minor)}&agent=${ref(x.gp)}&_include=AuditEvent:entity&_total=accurate`, tok[reader])).toBeGreaterThan(0);
      expect((await get(`AuditEvent?_sort=date`, tok[reader])).status).toBe(200);
    });
  }

  it("the patient finds no event by the representative of another record, and the same criteria count the same with _include", async () => {
    const parent = ref(x.parent);
    expect(await total(`AuditEvent?agent=${parent}&_summary=count`, tok.p1)).toBe(0);
    expect(await total(`AuditEvent?agent=${parent}&_total=accurate&_include=AuditEvent:entity`, tok.p1)).toBe(0);
    expect(await total(`AuditEvent?patient=${ref(x.minor)}&_summary=count`, tok.p1)).toBe(0);
    // the patient's own trail: the same total with and without an include
    const plain = await total(`AuditEvent?patient=${ref(x.p1)}&_total=accurate&_count=500`, tok.p1);
    expect(plain).toBeGreaterThan(0);
    expect(await total(`AuditEvent?patient=${ref(x.p1)}&_total=accurate&_count=500&_include=AuditEvent:entity`, tok.p1)).toBe(plain);
  });
});

/** The events an investigator finds about one document, by id. */
async function eventsAbout(doc: Json): Promise<string[]> {
  const events = entries(await get(`AuditEvent?entity=${ref(doc)}&_count=500`, tok.admin)).filter((e) => e.resourceType === 'AuditEvent');
  return events.map((e) => String(e.id));
}

/** The notices of a record a reader reads, and the events they are about. */
async function notices(patient: Json, token: string): Promise<Json[]> {
  return entries(await get(`Communication?recipient=${ref(patient)}&category=notification&_count=500`, token));
}
const aboutAny = (list: Json[], ids: string[]) => list.filter((c) => (c.about ?? []).some((a: Json) => ids.some((id) => a.reference === `AuditEvent/${id}`)));

/** Whether the reader reads these events and their notices by any path: each event by id, by search, counted. */
async function readerSees(patient: Json, token: string, ids: string[]): Promise<{ read: number[]; found: number; counted: number; notices: number; noticeTexts: string[] }> {
  const read: number[] = [];
  for (const id of ids) read.push((await get(`AuditEvent/${id}`, token)).status);
  const found = entries(await get(`AuditEvent?_id=${ids.join(',')}&_count=500`, token)).length;
  const counted = await total(`AuditEvent?_id=${ids.join(',')}&_summary=count`, token);
  const shown = aboutAny(await notices(patient, token), ids);
  return { read, found, counted, notices: shown.length, noticeTexts: shown.map((c) => c.payload?.[0]?.contentString) };
}

/** Whether hidden events come back through the other read paths: vread, history, $everything, _revinclude, batch entries. */
async function otherPathsShow(patient: Json, token: string, ids: string[]): Promise<{ statuses: number[]; listed: boolean }> {
  const statuses: number[] = [];
  for (const id of ids) {
    statuses.push((await get(`AuditEvent/${id}/_history/1`, token)).status);
    statuses.push((await get(`AuditEvent/${id}/_history`, token)).status);
  }
  const batch = await send('POST', '', token, { resourceType: 'Bundle', type: 'batch', entry: ids.map((id) => ({ request: { method: 'GET', url: `AuditEvent/${id}` } })) });
  expect(batch.status).toBe(200);
  for (const e of batch.body.entry) statuses.push(Number(String(e.response.status).slice(0, 3)));
  const everything = await get(`${ref(patient)}/$everything?_count=1000`, token);
  const revinclude = await get(`Patient?_id=${patient.id}&_revinclude=AuditEvent:patient&_count=500`, token);
  const typeHistory = await get('AuditEvent/_history?_count=1000', token);
  expect([everything.status, revinclude.status, typeHistory.status]).toEqual([200, 200, 200]);
  const text = [everything, revinclude, typeHistory].map((r) => JSON.stringify(r.body)).join('');
  return { statuses, listed: ids.some((id) => text.includes(`"id":"${id}"`)) };
}

/** A change PDSm lets a PATCH make (decision 021). */
const CONFIDENTIAL = JSON.stringify([{ op: 'add', path: '/securityLabel', value: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }] }]);

/** A professional reads, patches and deletes two documents of the patient hidden by `label`. */
async function accessesTo(patient: Json, label: string): Promise<{ kept: Json; deleted: Json }> {
  const kept = await create(documentResource(patient, REPORT, ref(x.gp), [label], undefined, `kept-${RUN}`), tok.gp);
  const deleted = await create(documentResource(patient, REPORT, ref(x.gp), [label], undefined, `deleted-${RUN}`), tok.gp);
  for (const doc of [kept, deleted]) {
    expect((await get(ref(doc), tok.gp)).status).toBe(200);
    expect((await get(`DocumentReference?_id=${doc.id}`, tok.gp)).status).toBe(200);
    expect((await http(t.base, ref(doc), { method: 'PATCH', body: CONFIDENTIAL, headers: { ...as(tok.gp), 'content-type': 'application/json-patch+json' } })).status).toBe(200);
  }
  expect((await send('DELETE', ref(deleted), tok.gp)).status).toBe(200);
  return { kept, deleted };
}

describe('the accesses to a document hidden from the reader', () => {
  it('a professional reading a shown document gives the patient one notice and one event they read', async () => {
    const shown = await create(documentResource(x.p1, REPORT, ref(x.gp), [], undefined, `shown-${RUN}`), tok.gp);
    const before = (await eventsAbout(shown)).length;
    expect((await get(ref(shown), tok.gp)).status).toBe(200);
    const ids = await eventsAbout(shown);
    expect(ids.length).toBe(before + 1);
    const seen = await readerSees(x.p1, tok.p1, ids);
    expect(seen.read.every((s) => s === 200)).toBe(true);
    expect([seen.found, seen.counted]).toEqual([ids.length, ids.length]);
    expect(seen.noticeTexts.filter((s) => s.includes('a consulté votre dossier'))).toHaveLength(1);
  });

  it('INVISIBLE_PATIENT: the patient reads no event or notice of its read, patch and delete, until the label is removed', async () => {
    const { kept, deleted } = await accessesTo(x.p1, 'INVISIBLE_PATIENT');
    const keptIds = await eventsAbout(kept);
    const deletedIds = await eventsAbout(deleted);
    // read, search, patch (and for the other, delete): the creation too
    expect(keptIds.length).toBeGreaterThanOrEqual(4);
    expect(deletedIds.length).toBeGreaterThanOrEqual(5);
    // the investigator's trail has notices about them: the patient has none
    for (const ids of [keptIds, deletedIds]) {
      expect(await readerSees(x.p1, tok.p1, ids)).toEqual({ read: ids.map(() => 404), found: 0, counted: 0, notices: 0, noticeTexts: [] });
      expect(await otherPathsShow(x.p1, tok.p1, ids)).toEqual({ statuses: [...ids.flatMap(() => [404, 404]), ...ids.map(() => 404)], listed: false });
    }
    const all = JSON.stringify((await get(`AuditEvent?patient=${ref(x.p1)}&_count=500`, tok.p1)).body) + JSON.stringify(await notices(x.p1, tok.p1));
    expect(all).not.toContain(kept.id);
    expect(all).not.toContain(deleted.id);

    // the author removes the label of the kept one: its events and notices show, the deleted one's stay hidden
    const removed = await send('POST', `${ref(kept)}/$meta-delete`, tok.gp, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { security: [{ system: A07, code: 'INVISIBLE_PATIENT' }] } }] });
    expect(removed.status).toBe(200);
    const shown = await readerSees(x.p1, tok.p1, keptIds);
    expect(shown.read.every((s) => s === 200)).toBe(true);
    expect([shown.found, shown.counted]).toEqual([keptIds.length, keptIds.length]);
    expect(shown.noticeTexts.some((s) => s.includes('a modifié des données de votre dossier'))).toBe(true);
    expect(shown.noticeTexts.some((s) => s.includes('a consulté votre dossier'))).toBe(true);
    expect((await readerSees(x.p1, tok.p1, deletedIds)).found).toBe(0);
  });

  it('INVISIBLE_REPRESENTANTS_LEGAUX: the representative reads none of them, the minor reads them all', async () => {
    const { kept, deleted } = await accessesTo(x.minor, 'INVISIBLE_REPRESENTANTS_LEGAUX');
    for (const doc of [kept, deleted]) {
      const ids = await eventsAbout(doc);
      expect(ids.length).toBeGreaterThanOrEqual(4);
      expect(await readerSees(x.minor, tok.parent, ids)).toEqual({ read: ids.map(() => 404), found: 0, counted: 0, notices: 0, noticeTexts: [] });
      expect(await otherPathsShow(x.minor, tok.parent, ids)).toEqual({ statuses: [...ids.flatMap(() => [404, 404]), ...ids.map(() => 404)], listed: false });
      const minor = await readerSees(x.minor, tok.minor, ids);
      expect([minor.read.every((s) => s === 200), minor.found, minor.counted]).toEqual([true, ids.length, ids.length]);
      expect(minor.notices).toBeGreaterThan(0);
      // the same paths do list them to whom they are shown: the check above can fail
      expect((await otherPathsShow(x.minor, tok.minor, ids)).listed).toBe(true);
    }
    const deletedNotices = (await readerSees(x.minor, tok.minor, await eventsAbout(deleted))).noticeTexts;
    expect(deletedNotices.some((s) => s.includes('a supprimé des données de votre dossier'))).toBe(true);
    const all = JSON.stringify((await get(`AuditEvent?patient=${ref(x.minor)}&_count=500`, tok.parent)).body) + JSON.stringify(await notices(x.minor, tok.parent));
    expect(all).not.toContain(kept.id);
    expect(all).not.toContain(deleted.id);
  });
});

describe('the daily digest tells only what every reader of it is shown', () => {
  // records of their own, so that the day's accesses to each are these alone
  const d: Json = {};
  const tk: Record<string, string> = {};
  const day = new Date().toISOString().slice(0, 10);
  const kindOf = (c: Json) => c.category?.[1]?.coding?.[0]?.code;
  const text = (c: Json) => c.payload?.[0]?.contentString as string;
  const line = (accesses: number) => `Le ${day.split('-').reverse().join('/')}, 1 professionnel a accédé à votre dossier : Paul Martin-${RUN} (Médecin) (${accesses} accès).`;
  const digests = (list: Json[]) => list.filter((c) => kindOf(c) === 'daily-digest');
  /** Every notice stored: the test client reads without restriction. */
  const stored = async (patient: Json) => entries(await http(t.base, `Communication?recipient=${ref(patient)}&category=notification&_count=500`));
  const label = (op: '$meta-add' | '$meta-delete', doc: Json, code: string) =>
    send('POST', `${ref(doc)}/${op}`, tok.gp, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { security: [{ system: A07, code }] } }] });

  /** A record the professional may enter, with the daily digest or not, set up by the test client (not audited). */
  async function record(name: string, birthDate: string, digest: boolean): Promise<Json> {
    const p = await create({ resourceType: 'Patient', name: [{ family: `${name}-${RUN}` }], birthDate });
    if (digest) {
      const extension = [{ url: NOTIFICATION_PREFERENCE_EXTENSION, valueCode: 'daily-digest' }];
      await create({ resourceType: 'Basic', code: { coding: [{ system: DMP_NOTIFICATION, code: 'notification-preference' }] }, subject: { reference: ref(p) }, extension });
    }
    await create(consent(p, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }));
    tk[name] = await mint(ref(p), 'patient/*.cruds');
    return p;
  }
  /** A document of the record with these labels, read once by the professional. */
  async function readByProfessional(patient: Json, labels: string[]): Promise<Json> {
    const doc = await create(documentResource(patient, REPORT, ref(x.gp), labels, undefined, `digest-${labels.join('-')}-${RUN}`));
    expect((await get(ref(doc), tok.gp)).status).toBe(200);
    return doc;
  }

  beforeAll(async () => {
    // the same accesses to a patient with the digest and to one told of each access
    for (const [name, digest] of [['adult', true], ['each', false]] as const) {
      d[name] = await record(name, '1970-01-01', digest);
      d[`${name}Shown`] = await readByProfessional(d[name], []);
      d[`${name}Hidden`] = await readByProfessional(d[name], ['INVISIBLE_PATIENT']);
    }
    // a day whose only access is to a document hidden from the patient
    d.onlyHidden = await record('onlyHidden', '1970-01-01', true);
    d.onlyHiddenDoc = await readByProfessional(d.onlyHidden, ['INVISIBLE_PATIENT']);
    // minors and their legal representatives, the same way
    for (const [name, digest] of [['minor', true], ['minorEach', false]] as const) {
      d[name] = await record(name, '2015-01-01', digest);
      const parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(d[name]) }, relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PRN' }] }] });
      tk[`${name}Parent`] = await mint(ref(parent), 'patient/*.cruds');
      d[`${name}Shown`] = await readByProfessional(d[name], []);
      d[`${name}Hidden`] = await readByProfessional(d[name], ['INVISIBLE_REPRESENTANTS_LEGAUX']);
    }
    d.written = await notificationDigest(t.running!.ctx, day, () => undefined);
    d.writtenAgain = await notificationDigest(t.running!.ctx, day, () => undefined);
  });

  it('the immediate notices of the same accesses: the patient reads the one of the shown document alone', async () => {
    const access = (await notices(d.each, tk.each)).filter((c) => kindOf(c) === 'access');
    expect(access.map(text)).toEqual([`Paul Martin-${RUN} (Médecin) a consulté votre dossier.`]);
    expect((await stored(d.each)).filter((c) => kindOf(c) === 'access')).toHaveLength(2);
  });

  it('INVISIBLE_PATIENT: the patient reads a digest counting the shown access alone, about its event alone', async () => {
    const mine = digests(await notices(d.adult, tk.adult));
    expect(mine.map(text)).toEqual([line(1)]);
    expect(mine[0].about).toHaveLength(1);
    const event = await get(mine[0].about[0].reference, tk.adult);
    expect(event.status).toBe(200);
    expect(JSON.stringify(event.body)).toContain(d.adultShown.id);
    // nothing stored tells more than the patient reads
    expect(digests(await stored(d.adult)).map((c) => c.id)).toEqual(mine.map((c) => c.id));
    expect(JSON.stringify(await stored(d.adult))).not.toContain(d.adultHidden.id);
  });

  it('INVISIBLE_PATIENT: a day whose only access was hidden has no digest, until a run for it once the access is shown', async () => {
    expect(digests(await stored(d.onlyHidden))).toHaveLength(0);
    expect((await http(t.base, `Communication/${digestId(d.onlyHidden.id, day)}`)).status).toBe(404);
    expect((await label('$meta-delete', d.onlyHiddenDoc, 'INVISIBLE_PATIENT')).status).toBe(200);
    expect(digests(await notices(d.onlyHidden, tk.onlyHidden))).toHaveLength(0);
    // the trail tells the access now that it is shown; a run for that day counts it, and the label's removal
    expect(entries(await get(`AuditEvent?patient=${ref(d.onlyHidden)}&entity=${ref(d.onlyHiddenDoc)}`, tk.onlyHidden)).length).toBeGreaterThan(0);
    expect(await notificationDigest(t.running!.ctx, day, () => undefined)).toBe(1);
    expect(digests(await notices(d.onlyHidden, tk.onlyHidden)).map(text)).toEqual([line(2)]);
  });

  it('INVISIBLE_REPRESENTANTS_LEGAUX: the notices tell the minor of both accesses, the representative of one', async () => {
    const minor = (await notices(d.minorEach, tk.minorEach)).filter((c) => kindOf(c) === 'access');
    const parent = (await notices(d.minorEach, tk.minorEachParent)).filter((c) => kindOf(c) === 'access');
    expect([minor.length, parent.length]).toEqual([2, 1]);
  });

  it('INVISIBLE_REPRESENTANTS_LEGAUX: the minor and the representative read one digest, counting the access shown to both', async () => {
    const minor = digests(await notices(d.minor, tk.minor));
    const parent = digests(await notices(d.minor, tk.minorParent));
    expect(minor.map(text)).toEqual([line(1)]);
    expect(parent).toEqual(minor);
    expect(JSON.stringify(await stored(d.minor))).not.toContain(d.minorHidden.id);
    const events = await Promise.all(parent[0].about.map((a: Json) => get(a.reference, tk.minorParent)));
    expect(events.map((e) => e.status)).toEqual([200]);
  });

  it('the script wrote those two digests, and a second run nothing', () => {
    expect([d.written, d.writtenAgain]).toEqual([2, 0]);
  });

  it('a label set after the digest hides it whole from those it now hides a counted access from, until removed', async () => {
    const [digest] = digests(await notices(d.minor, tk.minorParent));
    expect((await label('$meta-add', d.minorShown, 'INVISIBLE_REPRESENTANTS_LEGAUX')).status).toBe(200);
    expect(digests(await notices(d.minor, tk.minorParent))).toHaveLength(0);
    expect((await get(`Communication/${digest.id}`, tk.minorParent)).status).toBe(404);
    expect(digests(await notices(d.minor, tk.minor)).map((c) => c.id)).toEqual([digest.id]);
    expect((await label('$meta-delete', d.minorShown, 'INVISIBLE_REPRESENTANTS_LEGAUX')).status).toBe(200);
    expect(digests(await notices(d.minor, tk.minorParent)).map((c) => c.id)).toEqual([digest.id]);
  });
});

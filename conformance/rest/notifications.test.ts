import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { as, document, Json, PATIENT_DOC, ref, REPORT, requests } from '../accessFixtures';
import { auditEvent } from '../../src/audit/auditEvent';
import { DMP_NOTIFICATION, NOTIFICATION_PREFERENCE_EXTENSION, SERVER_DEVICE } from '../../src/audit/notification';
import { newVersion } from '../../src/interactions/common';
import { executeWrites } from '../../src/store/writeVersions';
import { notificationDigest } from '../../scripts/notificationDigest';
import { parseArgs, purgeAudit } from '../../scripts/purgeAudit';

/**
 * The patient's notifications and the trail's retention (docs/decisions/009-audit.md):
 * a Communication for each new document and each professional access, written with the
 * access; none for the patient's own; a daily digest instead when the patient chose it;
 * old AuditEvents purged by batches. Set-up by the unrestricted test client (not audited).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const { create, get, mint } = requests(() => t);
const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
const RUN = crypto.randomBytes(3).toString('hex');
const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  x.gp = await create({ resourceType: 'Practitioner', name: [{ given: ['Paul'], family: `Martin-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  x.er = await create({ resourceType: 'Practitioner', name: [{ given: ['Eva'], family: `Urgences-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.er) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  x.p3 = await create({ resourceType: 'Patient', name: [{ family: `Trois-${RUN}` }], birthDate: '1990-01-01' });
  tok.gp = await mint(ref(x.gp));
  tok.er = await mint(ref(x.er));
  for (const p of ['p1', 'p2', 'p3']) tok[p] = await mint(ref(x[p]), 'patient/*.cruds');
  // the treating physician of p1 and p3 (a declared consent)
  for (const p of [x.p1, x.p3]) {
    await create({
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: ref(p) },
      dateTime: new Date().toISOString(),
      performer: [{ reference: ref(x.gp) }],
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
      provision: { type: 'permit', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: ref(x.gp) } }] },
    });
  }
  x.d1 = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `doc ${RUN}`));
});

/** The patient's notifications, newest last (read by the test client, which is not audited). */
async function notificationsOf(patient: Json): Promise<Json[]> {
  const res = await http(t.base, `Communication?recipient=${ref(patient)}&category=notification&_count=500&_sort=sent`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: Json) => e.resource);
}
async function newNotifications<T>(patient: Json, fn: () => Promise<T>): Promise<{ result: T; notices: Json[] }> {
  const before = new Set((await notificationsOf(patient)).map((c) => c.id));
  const result = await fn();
  return { result, notices: (await notificationsOf(patient)).filter((c) => !before.has(c.id)) };
}
const codes = (c: Json) => c.category.map((cat: Json) => cat.coding[0].code);
const about = (c: Json) => c.about.map((a: Json) => a.reference);

describe('a notice for each new document and each professional access', () => {
  it('a document deposited by a professional: one notice to the patient, from this server, about the event and the document', async () => {
    const { result, notices } = await newNotifications(x.p1, () => http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, REPORT, ref(x.gp), [], undefined, `new ${RUN}`), headers: as(tok.gp) }));
    expect(result.status).toBe(201);
    expect(notices).toHaveLength(1);
    const [c] = notices;
    expect(c).toMatchObject({ status: 'completed', priority: 'routine', subject: { reference: ref(x.p1) }, recipient: [{ reference: ref(x.p1) }], sender: { reference: SERVER_DEVICE } });
    expect(codes(c)).toEqual(['notification', 'new-document']);
    expect(c.category[0].coding[0].system).toBe('http://terminology.hl7.org/CodeSystem/communication-category');
    expect(about(c)[0]).toMatch(/^AuditEvent\//);
    expect(about(c)).toContain(`DocumentReference/${result.body.id}`);
    expect(c.payload[0].contentString).toBe(`Un nouveau document a été ajouté à votre dossier par Paul Martin-${RUN} (Médecin).`);
    // the event it is about is the access's own
    const event = await http(t.base, about(c)[0]);
    expect(event.status).toBe(200);
    expect(event.body.entity.map((e: Json) => e.what.reference)).toContain(`DocumentReference/${result.body.id}/_history/1`);
    // the sender exists: the server created its Device at start-up
    expect((await http(t.base, SERVER_DEVICE)).status).toBe(200);
  });

  it("a professional's read: one notice naming them and their profession", async () => {
    const { result, notices } = await newNotifications(x.p1, () => get(`DocumentReference/${x.d1.id}`, tok.gp));
    expect(result.status).toBe(200);
    expect(notices).toHaveLength(1);
    expect(codes(notices[0])).toEqual(['notification', 'access']);
    expect(notices[0].payload[0].contentString).toBe(`Paul Martin-${RUN} (Médecin) a consulté votre dossier.`);
  });

  it('a search returning several documents of one record: one notice, not one per row', async () => {
    await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `doc ${RUN} bis`));
    const { result, notices } = await newNotifications(x.p1, () => get(`DocumentReference?patient=${x.p1.id}`, tok.gp));
    expect(result.body.entry.length).toBeGreaterThan(1);
    expect(notices).toHaveLength(1);
  });

  it('a break-glass search: a notice marked as an emergency, with the reason', async () => {
    const { result, notices } = await newNotifications(x.p2, async () => {
      await create(document(x.p2, REPORT, ref(x.gp), [], undefined, `p2 ${RUN}`));
      return get(`DocumentReference?patient=${x.p2.id}`, tok.er, { 'x-break-glass': 'inconscient aux urgences' });
    });
    expect(result.status).toBe(200);
    expect(result.body.entry.length).toBeGreaterThan(0);
    expect(notices).toHaveLength(1);
    const [c] = notices;
    expect(codes(c)).toEqual(['notification', 'emergency-access']);
    expect(c.priority).toBe('urgent');
    expect(c.reasonCode[0]).toMatchObject({ coding: [expect.objectContaining({ code: 'ETREAT' })], text: 'inconscient aux urgences' });
    expect(c.payload[0].contentString).toBe(`Accès en urgence (bris de glace) : Eva Urgences-${RUN} (Médecin) a consulté votre dossier. Motif invoqué : inconscient aux urgences.`);
  });

  it("the patient's own reads and documents: no notice", async () => {
    const { notices } = await newNotifications(x.p1, async () => {
      expect((await get(`DocumentReference/${x.d1.id}`, tok.p1)).status).toBe(200);
      expect((await get(`DocumentReference?patient=${x.p1.id}`, tok.p1)).status).toBe(200);
      expect((await http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, PATIENT_DOC, ref(x.p1), [], undefined, `mine ${RUN}`), headers: as(tok.p1) })).status).toBe(201);
    });
    expect(notices).toHaveLength(0);
  });

  it('the patient reads their notifications; another patient does not', async () => {
    const mine = await get(`Communication?recipient=${ref(x.p1)}&category=notification`, tok.p1);
    expect(mine.status).toBe(200);
    expect(mine.body.entry.length).toBeGreaterThanOrEqual(3);
    expect(mine.body.entry.every((e: Json) => e.resource.recipient[0].reference === ref(x.p1))).toBe(true);
    // reading them is the patient's own access: it makes no notice of its own
    expect((await notificationsOf(x.p1)).length).toBe(mine.body.entry.length);
    const theirs = await get(`Communication?recipient=${ref(x.p1)}&category=notification`, tok.p2);
    expect(theirs.status === 200 ? theirs.body.entry ?? [] : []).toHaveLength(0);
    expect(theirs.text).not.toContain('a consulté votre dossier');
    const one = await get(`Communication/${mine.body.entry[0].resource.id}`, tok.p2);
    expect(one.status).toBe(404);
  });
});

describe('the daily digest', () => {
  it('with the daily-digest preference: no notice per access; the digest script writes one, once', async () => {
    const preference = {
      resourceType: 'Basic',
      code: { coding: [{ system: DMP_NOTIFICATION, code: 'notification-preference' }] },
      subject: { reference: ref(x.p3) },
      extension: [{ url: NOTIFICATION_PREFERENCE_EXTENSION, valueCode: 'daily-digest' }],
    };
    const set = await http(t.base, 'Basic', { method: 'POST', json: preference, headers: as(tok.p3) });
    expect(set.status).toBe(201);
    const { notices } = await newNotifications(x.p3, async () => {
      expect((await http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p3, REPORT, ref(x.gp), [], undefined, `p3 ${RUN}`), headers: as(tok.gp) })).status).toBe(201);
      expect((await get(`DocumentReference?patient=${x.p3.id}`, tok.gp)).status).toBe(200);
      expect((await get(`Patient/${x.p3.id}`, tok.gp)).status).toBe(200);
    });
    expect(notices).toHaveLength(0);

    const day = new Date().toISOString().slice(0, 10);
    const printed: string[] = [];
    const digest = await newNotifications(x.p3, () => notificationDigest(t.running!.ctx, day, (l) => printed.push(l)));
    expect(digest.result).toBe(1);
    expect(digest.notices).toHaveLength(1);
    const [c] = digest.notices;
    expect(codes(c)).toEqual(['notification', 'daily-digest']);
    expect(c.identifier[0].value).toBe(`${x.p3.id}/${day}`);
    expect(c.about).toHaveLength(3);
    expect(c.payload[0].contentString).toBe(`Le ${day.split('-').reverse().join('/')}, 1 professionnel a accédé à votre dossier : Paul Martin-${RUN} (Médecin) (3 accès).`);
    // other patients chose nothing: no digest for them
    expect((await notificationsOf(x.p1)).filter((n) => codes(n).includes('daily-digest'))).toHaveLength(0);
    // run again the same day: nothing more
    const again = await newNotifications(x.p3, () => notificationDigest(t.running!.ctx, day, () => undefined));
    expect(again.result).toBe(0);
    expect(again.notices).toHaveLength(0);
  });

  it('with the daily digest, an emergency access is still told at once', async () => {
    const { notices } = await newNotifications(x.p3, () => get(`DocumentReference?patient=${x.p3.id}`, tok.er, { 'x-break-glass': 'arrêt cardiaque' }));
    expect(notices).toHaveLength(1);
    expect(codes(notices[0])).toContain('emergency-access');
  });
});

describe('retention', () => {
  it('purge-audit deletes the events older than the period, by batches, and keeps the recent ones', async () => {
    const ctx = t.running!.ctx;
    const agent = { reference: ref(x.gp), display: 'Paul', professions: [] };
    const day = 86_400_000;
    const write = async (ageDays: number) => {
      const recorded = new Date(Date.now() - ageDays * day).toISOString();
      const event = auditEvent(agent, { interaction: 'read' }, 0, { patient: x.p2.id, resources: [] }, { recorded, serverUrl: t.base });
      const v = newVersion(ctx, event, { id: crypto.randomUUID(), versionId: 1, lastUpdated: recorded, method: 'POST' });
      await executeWrites(ctx.db.knex, [{ ...v, compartment: x.p2.id }]);
      return v.id;
    };
    const old = [];
    for (const age of [4000, 3700, 3651, 5000, 3660]) old.push(await write(age));
    const recent = [await write(3640), await write(1)];
    expect((await http(t.base, `AuditEvent?patient=${ref(x.p2)}&date=lt${new Date(Date.now() - 3650 * day).toISOString()}`)).body.entry).toHaveLength(5);

    const printed: string[] = [];
    const args = parseArgs(['--older-than', '3650d', '--batch', '2'], 10);
    expect(args).toEqual({ olderThanDays: 3650, batch: 2 });
    expect(await purgeAudit(ctx.db.knex, { ...args, print: (l) => printed.push(l) })).toBe(5);
    expect(printed[0]).toMatch(/^purge-audit: 5 AuditEvent\(s\) recorded before .*, batches of 2$/);
    expect(printed.slice(1)).toEqual(['purge-audit: 2/5 deleted', 'purge-audit: 4/5 deleted', 'purge-audit: 5/5 deleted', 'purge-audit: done, 5 deleted']);
    for (const id of old) {
      expect((await http(t.base, `AuditEvent/${id}`)).status).toBe(404);
      expect((await http(t.base, `AuditEvent/${id}/_history`)).status).toBe(404);
      expect((await http(t.base, `AuditEvent?_id=${id}`)).body.entry ?? []).toHaveLength(0);
    }
    for (const id of recent) expect((await http(t.base, `AuditEvent/${id}`)).status).toBe(200);
    // nothing left to do: a second run deletes nothing
    expect(await purgeAudit(ctx.db.knex, { ...args, print: () => undefined })).toBe(0);
  });

  it('rejects a period that is not a number of days', () => {
    expect(() => parseArgs(['--older-than', '10y'], 10)).toThrow(/number of days/);
    expect(parseArgs([], 3650)).toEqual({ olderThanDays: 3650, batch: 1000 });
  });
});

import crypto from 'node:crypto';
import { createLogger } from '../../src/log';
import { RunningServer, startServer } from '../../src/server';
import { http, startTarget, Target } from '../harness';

/**
 * The audit trail is on unless the server was started in the same process with
 * `{ audit: false }` (measurement only, scripts/bench-audit.ts; docs/decisions/009-audit.md):
 * the same accesses on a server started normally and on one started with the option.
 */
let t: Target;
let off: RunningServer;
let offBase: string;
beforeAll(async () => {
  t = await startTarget();
  // the same configuration (issuers, database) as the normal server: only the option differs
  off = await startServer({ ...t.running!.ctx.config, port: 0 }, createLogger('silent'), { audit: false });
  offBase = off.url;
  off.ctx.config = { ...off.ctx.config, baseUrl: offBase };
});
afterAll(async () => {
  await off?.close();
  await t?.close();
});

const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
const A03 = 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument';
type Json = Record<string, any>;
const ref = (r: Json) => `${r.resourceType}/${r.id}`;

/** A practitioner with declared consent on a patient's record reads and writes it; what the trail and the notices hold after. */
async function accessesOn(base: string): Promise<{ events: number; notices: number }> {
  const run = crypto.randomBytes(3).toString('hex');
  const asTest = { authorization: `Bearer ${t.token}` };
  const create = async (resource: Json, headers: Record<string, string> = asTest) => {
    const res = await http(base, resource.resourceType, { method: 'POST', json: resource, headers });
    expect(res.status).toBe(201);
    return res.body as Json;
  };
  const gp = await create({ resourceType: 'Practitioner', name: [{ given: ['Paul'], family: `Martin-${run}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  const patient = await create({ resourceType: 'Patient', name: [{ family: `Off-${run}` }], birthDate: '1970-01-01' });
  await create({
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: ref(patient) },
    dateTime: new Date().toISOString(),
    performer: [{ reference: ref(gp) }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: { type: 'permit', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: ref(gp) } }] },
  });
  const token = await t.issuer!.mint({ sub: gp.id, fhirUser: ref(gp), scope: 'user/*.cruds' });
  const asGp = { authorization: `Bearer ${token}` };
  const document = await create(
    {
      resourceType: 'DocumentReference',
      status: 'current',
      type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
      category: [{ coding: [{ system: A03, code: '10' }] }],
      subject: { reference: ref(patient) },
      author: [{ reference: ref(gp) }],
      content: [{ attachment: { contentType: 'text/plain', data: 'dGVzdA==' } }],
    },
    asGp,
  );
  expect((await http(base, `DocumentReference/${document.id}`, { headers: asGp })).status).toBe(200);
  expect((await http(base, `DocumentReference?patient=${patient.id}`, { headers: asGp })).status).toBe(200);
  const count = async (path: string) => {
    const res = await http(base, path, { headers: asTest });
    expect(res.status).toBe(200);
    return (res.body.entry ?? []).length as number;
  };
  return { events: await count(`AuditEvent?patient=${ref(patient)}`), notices: await count(`Communication?recipient=${ref(patient)}`) };
}

it('a server started normally writes the AuditEvents and notices of a professional’s create, read and search', async () => {
  expect(await accessesOn(t.base)).toEqual({ events: 3, notices: 3 });
});

it('a server started in-process with { audit: false } writes neither', async () => {
  expect(off.ctx.withoutAudit).toBe(true);
  expect(t.running!.ctx.withoutAudit).toBeUndefined();
  expect(await accessesOn(offBase)).toEqual({ events: 0, notices: 0 });
});

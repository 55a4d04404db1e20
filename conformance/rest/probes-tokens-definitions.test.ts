import crypto from 'node:crypto';
import { http, startTarget, Target, TEST_AUDIENCE } from '../harness';
import { createTestIssuer } from '../testIssuer';
import { freshNir, withIns } from '../frenchFixtures';
import { resourceToXml } from '../../src/xml/convert';
import { A03, consent, G15, ircp, Json, LOINC, minimalProvideBundle, MHD_LIST_TYPES, PSYCH, R38, ref, REPORT, requests, document , practitionerWithRole } from '../accessFixtures';

/**
 * Probes from outside of the verified-token map (decision 026), of the definitions given to
 * one `$validate` call (decision 028), of what a PUT of a stored document and its relations
 * may do (decision 029), and of reads of resources that moved or were deleted.
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
const shape = (res: { status: number; text: string; headers: Headers }, ...ids: string[]) => ({
  status: res.status,
  text: ids.reduce((text, id) => text.split(id).join('ID'), res.text),
  contentType: res.headers.get('content-type'),
  location: res.headers.get('location'),
  etag: res.headers.get('etag'),
});
const body = (r: Json) => (({ meta: _meta, ...rest }) => rest)(r);

beforeAll(async () => {
  const practitioner = (name: string, profession: string) => practitionerWithRole(create, `${name}-${RUN}`, profession, profession === '10' ? 'SM54' : undefined);
  x.gp = await practitioner('Generaliste', '10');
  x.nurse = await practitioner('Infirmier', '60');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  tok.gp = await mint(ref(x.gp));
  tok.nurse = await mint(ref(x.nurse));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  // the GP is in both records, the nurse in p1's only
  await create(consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  await create(consent(x.p2, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  await create(consent(x.p1, ref(x.nurse), { type: 'permit', actor: [ircp(ref(x.nurse))] }), tok.nurse);
  x.report1 = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `r1 ${RUN}`), tok.gp);
  x.psych1 = await create(document(x.p1, PSYCH, ref(x.gp), [], undefined, `psy ${RUN}`), tok.gp);
  x.report2 = await create(document(x.p2, REPORT, ref(x.gp), [], undefined, `r2 ${RUN}`), tok.gp);
  expect((await get(ref(x.psych1), tok.nurse)).status).toBe(404);
  expect((await get(ref(x.report2), tok.nurse)).status).toBe(403);
});

describe('verified bearer tokens remembered briefly (decision 026)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const parts = (token: string) => token.split('.');
  const read = (token: string, raw = false) => http(t.base, ref(x.p1), { headers: { authorization: raw ? token : `Bearer ${token}` } });

  it('a token verified and remembered does not let any altered form of itself through', async () => {
    const token = await mint(ref(x.p1), 'patient/*.cruds');
    expect((await read(token)).status).toBe(200);
    expect((await read(token)).status).toBe(200);
    const [h, p, s] = parts(token);
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    const altered = [
      `${h}.${p}.${s.slice(0, 10)}${flip(s[10])}${s.slice(11)}`,
      `${h}.${p}.${flip(s[0])}${s.slice(1)}`,
      `${h}.${p}.`,
      `${h}.${p}`,
      `${h}.${p}.${s}A`,
      `${h}.${p}.${s}.`,
      `${h}.${p}.${s.slice(0, -4)}`,
      `${h}.${b64(JSON.stringify({ ...claims, fhirUser: ref(x.p2) }))}.${s}`,
      `${h}.${b64(JSON.stringify({ ...claims, scope: 'user/*.cruds' }))}.${s}`,
      `${h}.${b64(JSON.stringify({ ...claims, exp: claims.exp + 3600 }))}.${s}`,
      `${b64(JSON.stringify({ ...header, alg: 'none' }))}.${p}.`,
      `${b64(JSON.stringify({ ...header, alg: 'HS256' }))}.${p}.${s}`,
      `${b64(JSON.stringify({ ...header, kid: 'other' }))}.${p}.${s}`,
      `${b64(JSON.stringify({ ...header, typ: 'at+jwt' }))}.${p}.${s}`,
      token.toUpperCase(),
      token.toLowerCase(),
      `${h}.${p}.${s}`.replace(/\./g, '..'),
      `${token}=`,
      `${token}\t.`,
    ];
    const statuses = [];
    for (const a of altered) statuses.push((await read(a)).status);
    expect(statuses).toEqual(altered.map(() => 401));
    // the genuine token, still accepted; whitespace around it is the header's, not the token's
    expect((await read(`Bearer   ${token}   `, true)).status).toBe(200);
    expect((await read(`bearer ${token}`, true)).status).toBe(200);
    expect((await read(`Bearer ${token} x`, true)).status).toBe(401);
    expect((await read(`Bearer ${token}, Bearer ${token}`, true)).status).toBe(401);
  });

  it("another issuer's token, an attacker's key under the trusted issuer's name, and another audience are refused, before and after the genuine one is remembered", async () => {
    const stranger = await createTestIssuer({ audience: TEST_AUDIENCE, testClient: true });
    try {
      const { privateKey } = await (await import('jose')).generateKeyPair('RS256');
      const claims = { sub: 'p', fhirUser: ref(x.p1), scope: 'patient/*.cruds' };
      const genuine = await t.issuer!.mint(claims);
      const forged = [
        await stranger.mint(claims),
        await stranger.mint(claims, { issuer: t.issuer!.issuer }),
        await t.issuer!.mint(claims, { privateKey }),
        await t.issuer!.mint(claims, { audience: 'https://other.example/fhir' }),
        await t.issuer!.mint(claims, { audience: t.base }),
        await t.issuer!.mint({ ...claims, fhirUser: `https://other.example/fhir/${ref(x.p1)}` }),
        await t.issuer!.mint(claims, { exp: Math.floor(Date.now() / 1000) - 31 }),
        await t.issuer!.mint(claims, { nbf: Math.floor(Date.now() / 1000) + 120 }),
        await t.issuer!.mint(claims, { exp: null }),
      ];
      for (const f of forged) expect((await read(f)).status).toBe(401);
      expect((await read(genuine)).status).toBe(200);
      for (const f of forged) expect((await read(f)).status).toBe(401);
    } finally {
      await stranger.cleanup();
    }
  });

  it('a token remembered by one server is not taken by another server that does not trust its issuer', async () => {
    const other = await startTarget();
    try {
      const token = await t.issuer!.mint({ sub: 'test-client', scope: 'conformance-testing' });
      expect((await http(t.base, 'metadata', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await http(t.base, 'Patient?_count=1', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await http(other.base, 'Patient?_count=1', { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    } finally {
      await other.close();
    }
  });

  it('a remembered token stops being accepted once its exp has passed (no clock skew)', async () => {
    const strict = await startTarget({ AUTH_CLOCK_SKEW_SECONDS: '0' });
    try {
      const exp = Math.floor(Date.now() / 1000) + 2;
      const token = await strict.issuer!.mint({ sub: 'test-client', scope: 'conformance-testing' }, { exp });
      expect((await http(strict.base, 'Patient?_count=1', { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 1100));
      const late = await http(strict.base, 'Patient?_count=1', { headers: { authorization: `Bearer ${token}` } });
      expect(late.status).toBe(401);
      expect(late.body.issue[0].diagnostics).toMatch(/expired/);
    } finally {
      await strict.close();
    }
  });
});

describe('definitions supplied to one $validate call stay in it (decision 028)', () => {
  const params = (resource: object, ...definitions: object[]) => ({
    resourceType: 'Parameters',
    parameter: [{ name: 'resource', resource }, ...definitions.map((d) => ({ name: 'definition', resource: d }))],
  });
  const errors = (oo: Json) => ((oo?.issue ?? []) as Json[]).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  const validate = (json: unknown, path = '$validate', token?: string) => http(t.base, path, { method: 'POST', json, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
  const bogusStatusVs = {
    resourceType: 'ValueSet', url: 'http://hl7.org/fhir/ValueSet/observation-status', version: '4.0.1', status: 'active',
    compose: { include: [{ system: 'http://hl7.org/fhir/observation-status', concept: [{ code: 'bogus' }, { code: 'final' }] }] },
  };
  const bogusStatusCs = {
    resourceType: 'CodeSystem', url: 'http://hl7.org/fhir/observation-status', version: '4.0.1', status: 'active', content: 'complete',
    concept: [{ code: 'bogus' }, { code: 'final' }],
  };
  const genderVs = {
    resourceType: 'ValueSet', url: 'http://hl7.org/fhir/ValueSet/administrative-gender', version: '4.0.1', status: 'active',
    compose: { include: [{ system: 'http://hl7.org/fhir/administrative-gender', concept: [{ code: 'male' }] }] },
  };
  const corePatient = {
    resourceType: 'StructureDefinition', url: 'http://hl7.org/fhir/StructureDefinition/Patient', version: '4.0.1', status: 'active', fhirVersion: '4.0.1',
    kind: 'resource', abstract: false, type: 'Patient', baseDefinition: 'http://hl7.org/fhir/StructureDefinition/DomainResource', derivation: 'specialization',
    differential: { element: [{ id: 'Patient', path: 'Patient' }, { id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1, max: '1', type: [{ code: 'date' }] }] },
  };
  const obs = (status: string) => ({ resourceType: 'Observation', status, code: { text: 'x' } });

  it('an override of a core ValueSet, CodeSystem or StructureDefinition leaves no trace in later calls or writes', async () => {
    const baseline = {
      obs: errors((await validate(params(obs('bogus')))).body).length,
      female: errors((await validate(params({ resourceType: 'Patient', gender: 'female' }))).body).length,
      nobirth: errors((await validate(params({ resourceType: 'Patient' }))).body).length,
    };
    expect(baseline.obs).toBeGreaterThan(0);
    expect(baseline.female).toBe(0);
    expect(baseline.nobirth).toBe(0);
    for (let round = 0; round < 2; round++) {
      await validate(params(obs('bogus'), bogusStatusVs, bogusStatusCs));
      await validate(params({ resourceType: 'Patient', gender: 'female' }, genderVs));
      await validate(params({ resourceType: 'Patient' }, corePatient));
      await validate(params({ resourceType: 'Patient' }, corePatient), `Patient/$validate?profile=${encodeURIComponent(corePatient.url)}`);
      expect(errors((await validate(params(obs('bogus')))).body).length).toBe(baseline.obs);
      expect(errors((await validate(obs('bogus'), 'Observation/$validate')).body).length).toBe(baseline.obs);
      expect(errors((await validate(params({ resourceType: 'Patient', gender: 'female' }))).body).length).toBe(0);
      expect(errors((await validate(params({ resourceType: 'Patient' }))).body).length).toBe(0);
      expect((await send('POST', 'Observation', t.token, { ...obs('bogus'), subject: { reference: ref(x.p1) } })).status).toBeGreaterThanOrEqual(400);
      expect((await send('POST', 'Patient', t.token, { resourceType: 'Patient', gender: 'female', name: [{ family: `F-${RUN}` }] })).status).toBe(201);
    }
  });

  it('concurrent calls with and without an overriding definition each get their own verdict', async () => {
    const calls = Array.from({ length: 12 }, (_, i) => (i % 2 ? validate(params({ resourceType: 'Patient', gender: 'female' }, genderVs)) : validate(params({ resourceType: 'Patient', gender: 'female' }))));
    const results = await Promise.all(calls);
    results.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect([i, errors(r.body).length > 0]).toEqual([i, i % 2 === 1]);
    });
  });

  it('stores nothing a search could find, nor a definition usable as a profile afterwards', async () => {
    const url = `http://example.org/fhir/StructureDefinition/probe-${RUN}`;
    const sd = { ...corePatient, url, name: 'Probe', baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient', derivation: 'constraint', differential: { element: [{ id: 'Patient.gender', path: 'Patient.gender', min: 1 }] } };
    const vs = { resourceType: 'ValueSet', url: `http://example.org/fhir/ValueSet/probe-${RUN}`, status: 'active', compose: { include: [{ system: 'http://loinc.org' }] } };
    expect((await validate(params({ resourceType: 'Patient' }, sd, vs), `Patient/$validate?profile=${encodeURIComponent(url)}`)).status).toBe(200);
    for (const [type, u] of [['StructureDefinition', url], ['ValueSet', vs.url]]) {
      expect((await get(`${type}?url=${encodeURIComponent(u)}&_summary=count`, t.token)).body.total).toBe(0);
    }
    // a write claiming the profile meets it as it meets a profile nobody ever supplied
    const claimed = await send('POST', 'Patient', t.token, { resourceType: 'Patient', meta: { profile: [url] } });
    const never = `http://example.org/fhir/StructureDefinition/never-${RUN}`;
    const unknownClaim = await send('POST', 'Patient', t.token, { resourceType: 'Patient', meta: { profile: [never] } });
    expect(claimed.status).toBe(unknownClaim.status);
    expect(claimed.body.issue?.length ?? 0).toBe(unknownClaim.body.issue?.length ?? 0);
    // and the gender it demanded is not demanded of a $validate naming it without the definition
    const again = await validate(params({ resourceType: 'Patient' }), `Patient/$validate?profile=${encodeURIComponent(url)}`);
    expect(JSON.stringify(again.body)).not.toMatch(/gender/);
  });

  it('refuses hostile regular expressions in supplied definitions (RE2), alone and nested in a Bundle', async () => {
    const hostile = (regex: string) => ({
      ...corePatient, url: `http://example.org/fhir/StructureDefinition/re-${RUN}`, baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient', derivation: 'constraint',
      differential: { element: [{ id: 'Patient.name.family', path: 'Patient.name.family', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/regex', valueString: regex }] }] },
    });
    const sdRegex = (regex: string) => ({
      ...corePatient, url: `http://example.org/fhir/StructureDefinition/re2-${RUN}`, baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient', derivation: 'constraint',
      differential: { element: [{ id: 'Patient', path: 'Patient', constraint: [{ key: 'x-2', severity: 'error', human: 'h', expression: `name.family.all(matches('${regex}'))` }] }] },
    });
    const resource = { resourceType: 'Patient', name: [{ family: `${'a'.repeat(40)}!` }] };
    // (a+)+ is linear under RE2; lookbehind, lookahead and back-references cannot run (the last
    // only outside a FHIRPath string, where \1 is no escape)
    for (const regex of ['(a+)+$', '(?<=a)b', '(?!a)b', '(a)\\1']) {
      const inFhirPath = regex !== '(a)\\1';
      if (inFhirPath) {
        const direct = await validate(params(resource, sdRegex(regex)));
        const inBundle = await validate(params(resource, { resourceType: 'Bundle', type: 'collection', entry: [{ resource: sdRegex(regex) }] }));
        expect(['constraint', regex, direct.status, inBundle.status]).toEqual(['constraint', regex, ...(regex === '(a+)+$' ? [200, 200] : [400, 400])]);
      }
      const q = { resourceType: 'Questionnaire', url: `http://example.org/fhir/Questionnaire/re-${RUN}`, status: 'active', item: [{ linkId: 'n', type: 'string', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/regex', valueString: regex }] }] };
      const qr = { resourceType: 'QuestionnaireResponse', questionnaire: q.url, status: 'completed', item: [{ linkId: 'n', answer: [{ valueString: `${'a'.repeat(40)}!` }] }] };
      const vs = { resourceType: 'ValueSet', url: `http://example.org/fhir/ValueSet/re-${RUN}`, status: 'active', compose: { include: [{ system: 'http://loinc.org', filter: [{ property: 'code', op: 'regex', value: regex }] }] } };
      const statuses = [(await validate(params(qr, q))).status, (await validate(params(resource, vs))).status];
      expect(['questionnaire, value set', regex, ...statuses]).toEqual(['questionnaire, value set', regex, ...(regex === '(a+)+$' ? [200, 200] : [400, 400])]);
      // an element's regex extension is not run by the validator: a verdict, whatever it says
      expect((await validate(params(resource, hostile(regex)), `Patient/$validate?profile=${encodeURIComponent(hostile(regex).url)}`)).status).toBe(200);
    }
  });

  it('in XML Parameters: an override stays in its call, a hostile regular expression is refused', async () => {
    const xml = (resource: Json, ...definitions: Json[]) =>
      `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="resource"/><resource>${resourceToXml(resource)}</resource></parameter>` +
      definitions.map((d) => `<parameter><name value="definition"/><resource>${resourceToXml(d)}</resource></parameter>`).join('') + '</Parameters>';
    const post = (body: string) => http(t.base, '$validate', { method: 'POST', body, headers: { 'content-type': 'application/fhir+xml', accept: 'application/fhir+json' } });
    const female = { resourceType: 'Patient', gender: 'female' };
    const overridden = await post(xml(female, genderVs));
    expect([overridden.status, errors(overridden.body).length > 0]).toEqual([200, true]);
    const plain = await post(xml(female));
    expect([plain.status, errors(plain.body)]).toEqual([200, []]);
    const q = { resourceType: 'Questionnaire', url: `http://example.org/fhir/Questionnaire/x-${RUN}`, status: 'active', item: [{ linkId: 'n', type: 'string', extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/regex', valueString: '(?<=a)b' }] }] };
    const qr = { resourceType: 'QuestionnaireResponse', questionnaire: q.url, status: 'completed', item: [{ linkId: 'n', answer: [{ valueString: 'ab' }] }] };
    expect((await post(xml(qr, q))).status).toBe(400);
    expect((await post(xml(qr, { resourceType: 'Bundle', type: 'collection', entry: [{ resource: q }] }))).status).toBe(400);
  });

  it('bounds a huge or self-referencing definition', async () => {
    const url = `http://example.org/fhir/StructureDefinition/loop-${RUN}`;
    const loop = { ...corePatient, url, baseDefinition: url, derivation: 'constraint', differential: { element: [{ id: 'Patient', path: 'Patient' }] } };
    const res = await validate(params({ resourceType: 'Patient' }, loop), `Patient/$validate?profile=${encodeURIComponent(url)}`);
    expect([200, 400, 422]).toContain(res.status);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const a = `http://example.org/fhir/StructureDefinition/a-${RUN}`;
    const b = `http://example.org/fhir/StructureDefinition/b-${RUN}`;
    const pair = [{ ...loop, url: a, baseDefinition: b }, { ...loop, url: b, baseDefinition: a }];
    const res2 = await validate(params({ resourceType: 'Patient' }, ...pair), `Patient/$validate?profile=${encodeURIComponent(a)}`);
    expect([200, 400, 422]).toContain(res2.status);
    const vsLoop = { resourceType: 'ValueSet', url: `http://example.org/fhir/ValueSet/loop-${RUN}`, status: 'active', compose: { include: [{ valueSet: [`http://example.org/fhir/ValueSet/loop-${RUN}`] }] } };
    const bound = {
      ...loop, url: `http://example.org/fhir/StructureDefinition/bound-${RUN}`, baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
      differential: { element: [{ id: 'Patient.maritalStatus', path: 'Patient.maritalStatus', binding: { strength: 'required', valueSet: vsLoop.url } }] },
    };
    const res3 = await validate(params({ resourceType: 'Patient', maritalStatus: { coding: [{ system: 'urn:x', code: 'y' }] } }, bound, vsLoop), `Patient/$validate?profile=${encodeURIComponent(bound.url)}`);
    expect([200, 400, 422]).toContain(res3.status);
    // a body past the limit is refused as too large
    const huge = { ...loop, url: `http://example.org/fhir/StructureDefinition/huge-${RUN}`, description: 'x'.repeat(60 * 1024 * 1024) };
    const res4 = await http(t.base, '$validate', { method: 'POST', json: params({ resourceType: 'Patient' }, huge) }).catch(() => ({ status: 413 }));
    expect(res4.status).toBe(413);
    // the server still answers
    expect((await get('metadata')).status).toBe(200);
  });
});

describe('a PUT of a stored DocumentReference is held to what its PATCH may change (decision 029)', () => {
  const byId = (d: Json) => `DocumentReference/${d.id}`;
  let doc: Json;
  beforeAll(async () => {
    doc = await create({ ...document(x.p1, REPORT, ref(x.gp), [], undefined, `put ${RUN}`), masterIdentifier: { system: 'urn:ietf:rfc:3986', value: `urn:oid:1.2.250.1.999.${parseInt(RUN, 16)}.1` } }, tok.gp);
  });
  const unchanged = async () => {
    const now = (await get(byId(doc), t.token)).body;
    expect([now.meta.versionId, now.subject, now.description]).toEqual([doc.meta.versionId, doc.subject, doc.description]);
  };
  const changes = (): Json[] => [
    { ...body(doc), subject: { reference: ref(x.p2) } },
    { ...body(doc), type: { coding: [{ system: 'http://loinc.org', code: PSYCH.code }] } },
    { ...body(doc), author: [{ reference: ref(x.nurse) }] },
    { ...body(doc), content: [{ attachment: { contentType: 'text/plain', data: 'b3RoZXI=' } }] },
    { ...body(doc), text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">autre</div>' } },
    { ...body(doc), contained: [{ resourceType: 'Patient', id: 'c1' }], subject: { reference: '#c1' } },
    { ...body(doc), masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4' } },
  ];

  it('by id, by the test client and by the author: 405 for every other element', async () => {
    for (const [i, c] of changes().entries()) {
      // a contained subject takes the document out of every record: the author's write rules refuse that first (decision 031, amendment)
      const outOfRecord = c.subject?.reference === '#c1';
      for (const token of [t.token!, tok.gp]) expect([i, (await send('PUT', byId(doc), token, c)).status]).toEqual([i, outOfRecord && token === tok.gp ? 403 : 405]);
    }
    await unchanged();
  });

  it('a PUT dropping the subject is refused and changes nothing', async () => {
    const res = await send('PUT', byId(doc), t.token, (({ subject: _s, ...rest }) => rest)(body(doc)));
    expect([405, 422]).toContain(res.status);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await unchanged();
  });

  it('conditional on the identifier, inside a transaction and inside a batch: 405', async () => {
    const cond = `DocumentReference?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${doc.masterIdentifier.value}`)}`;
    for (const [i, c] of changes().entries()) {
      const { id: _id, ...noId } = c;
      expect([i, (await send('PUT', cond, t.token, noId)).status]).toEqual([i, 405]);
      const tx = await send('POST', '', t.token, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: c, request: { method: 'PUT', url: byId(doc) } }] });
      expect([i, tx.status]).toEqual([i, 405]);
      const txc = await send('POST', '', t.token, { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: noId, request: { method: 'PUT', url: cond } }] });
      expect([i, txc.status]).toEqual([i, 405]);
      const batch = await send('POST', '', t.token, { resourceType: 'Bundle', type: 'batch', entry: [{ resource: c, request: { method: 'PUT', url: byId(doc) } }] });
      expect([i, batch.status, batch.body.entry[0].response.status.slice(0, 3)]).toEqual([i, 200, '405']);
    }
    await unchanged();
  });

  it('a PUT of a deleted document re-creates it, but its former versions stay out of the new record', async () => {
    const d = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `secret of Un ${RUN}`), tok.gp);
    expect((await send('DELETE', byId(d), tok.gp)).status).toBeLessThan(300);
    // with content of its own: the former content is in the former record (decision 029, amendment)
    const recreated = await send('PUT', byId(d), t.token, { ...body(d), subject: { reference: ref(x.p2) }, description: `now Deux ${RUN}`, content: [{ attachment: { contentType: 'text/plain', data: 'dGVzdA==' } }] });
    expect([200, 201]).toContain(recreated.status);
    expect((await get(byId(d), tok.p2)).body.description).toBe(`now Deux ${RUN}`);
    const v1 = await get(`${byId(d)}/_history/1`, tok.p2);
    const v9 = await get(`${byId(d)}/_history/9`, tok.p2);
    expect(shape(v1, '/_history/1')).toEqual(shape(v9, '/_history/9'));
    const hist = await get(`${byId(d)}/_history`, tok.p2);
    expect(hist.text).not.toContain('secret of Un');
    const typeHist = await get('DocumentReference/_history?_count=500', tok.p2);
    expect(typeHist.text).not.toContain('secret of Un');
    // p1 no longer reads it as theirs; as a missing one
    const mine = await get(byId(d), tok.p1);
    const missing = await get(`DocumentReference/${crypto.randomUUID()}`, tok.p1);
    expect(mine.status).toBe(missing.status);
  });
});

describe('relations stay in their record, and hidden looks like missing (decision 029)', () => {
  const codes = ['replaces', 'transforms', 'signs', 'appends'];
  const related = (code: string, target: string, patient = x.p1) => ({ ...document(patient, REPORT, ref(x.nurse), [], undefined, `rel ${RUN}`), relatesTo: [{ code, target: { reference: target } }] });
  const unknown = () => `DocumentReference/${crypto.randomUUID()}`;

  it('relatesTo of every code naming a hidden document answers as for an unknown one; another record is refused', async () => {
    for (const code of codes) {
      const hidden = await send('POST', 'DocumentReference', tok.nurse, related(code, ref(x.psych1)));
      const u = unknown();
      const missing = await send('POST', 'DocumentReference', tok.nurse, related(code, u));
      expect([code, hidden.status]).toEqual([code, 422]);
      expect(shape(hidden, x.psych1.id)).toEqual(shape(missing, u.split('/')[1]));
      // another record's document the writer reads (the GP): refused
      const other = await send('POST', 'DocumentReference', tok.gp, { ...related(code, ref(x.report2)), author: [{ reference: ref(x.gp) }] });
      expect([code, other.status]).toEqual([code, 422]);
      // another record's document the writer cannot read (the nurse): as unknown
      const otherHidden = await send('POST', 'DocumentReference', tok.nurse, related(code, ref(x.report2)));
      const u2 = unknown();
      const missing2 = await send('POST', 'DocumentReference', tok.nurse, related(code, u2));
      expect(shape(otherHidden, x.report2.id)).toEqual(shape(missing2, u2.split('/')[1]));
    }
  });

  it('other spellings of the reference do not get past the rule', async () => {
    const spellings = (d: Json) => [`${t.base}/DocumentReference/${d.id}`, `DocumentReference/${d.id}/_history/1`, `${t.base}/DocumentReference/${d.id}/_history/1`];
    for (const code of codes) {
      for (const s of spellings(x.report2)) {
        const res = await send('POST', 'DocumentReference', tok.gp, { ...related(code, s), author: [{ reference: ref(x.gp) }] });
        expect([code, s, res.status]).toEqual([code, s, 422]);
      }
    }
  });

  it('a List naming another record\'s, a hidden or an unknown document: refused, hidden as unknown', async () => {
    const list = (items: string[], token: string, code = 'submissionset') => send('POST', 'List', token, {
      resourceType: 'List', status: 'current', mode: 'working', title: `l ${RUN}`,
      code: { coding: [{ system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes', code }] },
      subject: { reference: ref(x.p1) }, date: new Date().toISOString(), source: { reference: token === tok.gp ? ref(x.gp) : ref(x.nurse) },
      identifier: [{ use: 'usual', system: 'urn:ietf:rfc:3986', value: `urn:uuid:${crypto.randomUUID()}` }],
      entry: items.map((reference) => ({ item: { reference } })),
    });
    expect((await list([ref(x.report2)], tok.gp)).status).toBe(422);
    expect((await list([`${t.base}/${ref(x.report2)}`], tok.gp)).status).toBe(422);
    expect((await list([`${ref(x.report2)}/_history/1`], tok.gp)).status).toBe(422);
    const hidden = await list([ref(x.psych1)], tok.nurse);
    const u = unknown();
    const missing = await list([u], tok.nurse);
    expect(hidden.status).toBe(422);
    expect(shape(hidden, x.psych1.id)).toEqual(shape(missing, u.split('/')[1]));
    const otherHidden = await list([ref(x.report2)], tok.nurse);
    const u2 = unknown();
    expect(shape(otherHidden, x.report2.id)).toEqual(shape(await list([u2], tok.nurse), u2.split('/')[1]));
    // adding by PATCH or PUT to a List of the record: the same
    const own = await list([ref(x.report1)], tok.gp);
    expect(own.status).toBe(201);
    const patched = await send('PATCH', `List/${own.body.id}`, tok.gp, [{ op: 'add', path: '/entry/-', value: { item: { reference: ref(x.report2) } } }], { 'content-type': 'application/json-patch+json' });
    expect(patched.status).toBe(422);
    const put = await send('PUT', `List/${own.body.id}`, tok.gp, { ...body(own.body), entry: [...own.body.entry, { item: { reference: ref(x.report2) } }] });
    expect(put.status).toBe(422);
  });

  it("a 403 by id names no other record's patient, on any path", async () => {
    const paths = [ref(x.report2), `${ref(x.report2)}/_history`, `${ref(x.report2)}/_history/1`, `${ref(x.report2)}/$meta`];
    const seen: Record<string, number> = {};
    for (const p of paths) {
      const res = await get(p, tok.nurse);
      seen[p] = res.status;
      expect(res.text).not.toContain(x.p2.id);
    }
    for (const [method, json, headers] of [
      ['PUT', { ...body(x.report2), status: 'superseded' }, {}],
      ['PATCH', [{ op: 'replace', path: '/status', value: 'superseded' }], { 'content-type': 'application/json-patch+json' }],
      ['DELETE', undefined, {}],
    ] as const) {
      const res = await send(method, ref(x.report2), tok.nurse, json, headers);
      seen[method] = res.status;
      expect(res.text).not.toContain(x.p2.id);
    }
    const meta = await send('POST', `${ref(x.report2)}/$meta-add`, tok.nurse, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'urn:x', code: 'y' }] } }] });
    seen.metaAdd = meta.status;
    expect(meta.text).not.toContain(x.p2.id);
    // every interaction says the record is closed to the caller (403, decision 031), and none changes anything
    expect(seen).toEqual({ ...Object.fromEntries(paths.map((p) => [p, 403])), PUT: 403, PATCH: 403, DELETE: 403, metaAdd: 403 });
    const after = await get(ref(x.report2), tok.gp);
    expect([after.status, after.body.meta.versionId, after.body.status]).toEqual([200, x.report2.meta.versionId, 'current']);
  });
});

describe('a submission for a national record is held to PDSm however it names its Patient (decision 029)', () => {
  const INS = 'urn:oid:1.2.250.1.213.1.4.8';
  let serial = 0;
  const uniqueId = () => `urn:oid:1.2.250.1.999.${parseInt(RUN, 16)}.9${++serial}`;
  /** An ITI-65 Bundle without PDSm metadata whose SubmissionSet and document name the patient as `subject`. */
  const provide = (subject: string) => minimalProvideBundle({ subject, author: ref(x.gp), uniqueId, text: `sans PDSm ${RUN} ${++serial}` });

  it('by id, absolute URL, version or INS: refused with XDSRegistryMetadataError, nothing written; a Patient without INS is accepted', async () => {
    const nir = freshNir();
    const national = await create(withIns({ resourceType: 'Patient', name: [{ family: `National-${RUN}` }], birthDate: '1975-04-12', gender: 'female' }, INS, nir));
    await create(consent(national, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
    const spellings = [ref(national), `${t.base}/${ref(national)}`, `${ref(national)}/_history/1`, `Patient?identifier=${encodeURIComponent(`${INS}|${nir}`)}`];
    const refusals: Record<string, [number, boolean]> = {};
    for (const subject of spellings) {
      // the content as a Binary of the Bundle, and as a URL outside it
      const external = provide(subject);
      external.entry[1].resource.content = [{ attachment: { contentType: 'application/pdf', url: `https://documents.example.org/${RUN}/${++serial}.pdf` } }] as any;
      external.entry.pop();
      for (const [form, bundle] of [['binary', provide(subject)], ['external', external]] as const) {
        const res = await send('POST', '', tok.gp, bundle);
        const errs = (res.body.issue ?? []).filter((i: Json) => i.severity === 'error');
        refusals[`${form} ${subject}`] = [res.status, errs.length > 0 && errs.every((i: Json) => i.details?.text === 'XDSRegistryMetadataError')];
      }
    }
    // refused with the registry's code, a version-specific subject too: its Binary is of the same record (decision 031)
    expect(refusals).toEqual(Object.fromEntries(spellings.flatMap((s) => [
      [`binary ${s}`, [422, true]],
      [`external ${s}`, [422, true]],
    ])));
    const docs = await get(`DocumentReference?patient=${national.id}&_summary=count`, tok.gp);
    expect(docs.body.total).toBe(0);
    const sets = await get(`List?patient=${national.id}&_summary=count`, tok.gp);
    expect(sets.body.total).toBe(0);
    // a $validate that supplies a lax definition of the server's own SubmissionSet profile changes nothing for the next submission
    const lax = { resourceType: 'StructureDefinition', url: 'https://fhir.dmp.esante.example/StructureDefinition/dmp-submission-set', version: '0.1.0', status: 'active', fhirVersion: '4.0.1', kind: 'resource', abstract: false, type: 'List', baseDefinition: 'http://hl7.org/fhir/StructureDefinition/List', derivation: 'constraint', differential: { element: [{ id: 'List', path: 'List' }] } };
    const submissionSet = provide(ref(national)).entry[0].resource;
    const laxCall = await send('POST', `List/$validate?profile=${encodeURIComponent(lax.url)}`, tok.gp, { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: submissionSet }, { name: 'definition', resource: lax }] });
    expect([laxCall.status, laxCall.body.issue.filter((i: Json) => i.severity === 'error')]).toEqual([200, []]);
    const [during, after] = await Promise.all([
      send('POST', '', tok.gp, provide(ref(national))),
      send('POST', `List/$validate?profile=${encodeURIComponent(lax.url)}`, tok.gp, { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: submissionSet }, { name: 'definition', resource: lax }] }),
    ]);
    expect([during.status, after.status]).toEqual([422, 200]);
    expect((await send('POST', '', tok.gp, provide(ref(national)))).status).toBe(422);
    // the same Bundle for a record without INS goes in
    const plain = await send('POST', '', tok.gp, provide(ref(x.p1)));
    expect(plain.status).toBe(200);
    // the patient's side: another record's Patient answers as an unknown one
    const unknownId = crypto.randomUUID();
    const asPatient = (subject: string) => {
      const b = provide(subject);
      b.entry[1].resource.author = [{ reference: ref(x.p1) }];
      b.entry[1].resource.type = { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire', code: 'DOCPAT03' }] };
      b.entry[1].resource.category = [{ coding: [{ system: A03, code: '90' }] }];
      return b;
    };
    const strip = (b: Json) => JSON.stringify(b).replace(/urn:uuid:[0-9a-f-]+/g, 'U').replace(/urn:oid:[0-9.]+/g, 'O');
    const other = await send('POST', '', tok.p1, asPatient(ref(x.p2)));
    const nobody = await send('POST', '', tok.p1, asPatient(`Patient/${unknownId}`));
    expect(other.status).toBeGreaterThanOrEqual(400);
    expect([other.status, strip(other.body).split(x.p2.id).join('ID')]).toEqual([nobody.status, strip(nobody.body).split(unknownId).join('ID')]);
    // a Folder of a version-specific subject gathers no document of another record
    const versioned = `${ref(x.p1)}/_history/1`;
    const withFolder = provide(versioned);
    withFolder.entry[1].resource.content = [{ attachment: { contentType: 'application/pdf', url: `https://documents.example.org/${RUN}/${++serial}.pdf` } }] as any;
    withFolder.entry.pop();
    withFolder.entry.push({ fullUrl: `urn:uuid:${crypto.randomUUID()}`, request: { method: 'POST', url: 'List' }, resource: {
      resourceType: 'List', identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: uniqueId() }], status: 'current', mode: 'working',
      code: { coding: [{ system: MHD_LIST_TYPES, code: 'folder' }] }, subject: { reference: versioned }, date: new Date().toISOString(),
      extension: [{ url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType', valueCodeableConcept: { coding: [{ system: LOINC, code: REPORT.code }] } }],
      entry: [{ item: { reference: withFolder.entry[1].fullUrl } }, { item: { reference: ref(x.report2) } }] } } as any);
    (withFolder.entry[0].resource as Json).entry.push({ item: { reference: withFolder.entry[2].fullUrl } });
    const folderRes = await send('POST', '', tok.gp, withFolder);
    expect(folderRes.status).toBe(422);
    expect(folderRes.body.issue.map((i: Json) => i.expression[0])).toEqual(['Bundle.entry[2].resource.entry[1].item']);
    // an access refusal carries no XDS code
    const stranger = await mint(ref(x.nurse));
    const refused = await send('POST', '', stranger, provide(ref(x.p2)));
    expect(refused.status).toBe(403);
    expect(JSON.stringify(refused.body)).not.toMatch(/XDS/);
  });
});

describe('reads addressed where the facts found the resource: moved and deleted resources', () => {
  const observation = (patient: Json, text: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'note' }, subject: { reference: ref(patient) }, valueString: text });

  it('after a move, the former record reads it as missing, and the new record reads none of its former versions on any path', async () => {
    const o = await create(observation(x.p1, `secret of Un ${RUN}`), tok.gp);
    expect((await get(ref(o), tok.p1)).status).toBe(200);
    expect((await send('PUT', ref(o), t.token, { ...body(o), subject: { reference: ref(x.p2) }, valueString: `moved ${RUN}` })).status).toBe(200);
    const missingId = crypto.randomUUID();
    const gone = await get(ref(o), tok.p1);
    const missing = await get(`Observation/${missingId}`, tok.p1);
    expect(shape(gone, o.id)).toEqual(shape(missing, missingId));
    for (const path of ['_history', '_history/2']) {
      expect(shape(await get(`${ref(o)}/${path}`, tok.p1), o.id)).toEqual(shape(await get(`Observation/${missingId}/${path}`, tok.p1), missingId));
    }
    // the new record: the resource as it is now, never its former text
    const paths = [`${ref(o)}/_history`, 'Observation/_history?_count=500', `Observation?_id=${o.id}`, `Patient/${x.p2.id}/$everything`, `Observation?patient=${x.p2.id}&_count=500`, `_history?_count=500`];
    for (const path of paths) {
      const res = await get(path, tok.p2);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, res.text.includes('secret of Un')]).toEqual([path, false]);
    }
  });

  it('reads racing with moves back and forth never return a version of the other record', async () => {
    const o = await create(observation(x.p1, `home Un ${RUN}`), tok.gp);
    const seen: string[] = [];
    let version = 1;
    for (let round = 0; round < 15; round++) {
      const to = round % 2 === 0 ? x.p2 : x.p1;
      const reads = [tok.p1, tok.p2, tok.p1, tok.p2].map((token) => get(ref(o), token).then((r) => ({ token, r })));
      const history = [tok.p1, tok.p2].map((token) => get(`${ref(o)}/_history`, token).then((r) => ({ token, r })));
      const move = send('PUT', ref(o), t.token, { ...body(o), subject: { reference: ref(to) }, valueString: `${to === x.p1 ? 'home Un' : 'at Deux'} ${RUN}` });
      const [moved, ...answers] = await Promise.all([move, ...reads, ...history]);
      expect(moved.status).toBe(200);
      version++;
      for (const { token, r } of answers as { token: string; r: { status: number; body: any } }[]) {
        const reader = token === tok.p1 ? x.p1 : x.p2;
        if (r.status !== 200) continue;
        const resources: Json[] = r.body.resourceType === 'Bundle' ? (r.body.entry ?? []).map((e: Json) => e.resource).filter(Boolean) : [r.body];
        for (const res of resources) if (res.subject.reference !== ref(reader)) seen.push(`${ref(reader)} read ${res.subject.reference} v${res.meta.versionId}`);
      }
    }
    expect(version).toBe(16);
    expect(seen).toEqual([]);
  });

  it('a deleted resource answers 410 to whoever read it, and as a missing one to another record', async () => {
    const o = await create(observation(x.p1, `to delete ${RUN}`), tok.gp);
    expect((await send('DELETE', ref(o), tok.gp)).status).toBeLessThan(300);
    expect((await get(ref(o), tok.p1)).status).toBe(410);
    const missingId = crypto.randomUUID();
    for (const path of ['', '/_history', '/_history/1', '/_history/2']) {
      expect([path, shape(await get(`${ref(o)}${path}`, tok.p2), o.id)]).toEqual([path, shape(await get(`Observation/${missingId}${path}`, tok.p2), missingId)]);
    }
  });
});

describe('more of the same: hidden as missing on the edges', () => {
  it('[type]/[id]/$validate of a hidden document, with or without mode=delete, answers as for a missing one', async () => {
    const u = crypto.randomUUID();
    for (const suffix of ['/$validate', '/$validate?mode=delete']) {
      const hidden = await send('POST', `${ref(x.psych1)}${suffix}`, tok.nurse, { resourceType: 'Parameters', parameter: [] });
      const missing = await send('POST', `DocumentReference/${u}${suffix}`, tok.nurse, { resourceType: 'Parameters', parameter: [] });
      expect([suffix, shape(hidden, x.psych1.id)]).toEqual([suffix, shape(missing, u)]);
      const hiddenGet = await get(`${ref(x.psych1)}${suffix}`, tok.nurse);
      const missingGet = await get(`DocumentReference/${u}${suffix}`, tok.nurse);
      expect([suffix, shape(hiddenGet, x.psych1.id)]).toEqual([suffix, shape(missingGet, u)]);
    }
  });

  it('a PUT onto a hidden document answers as a PUT onto a free id, and changes nothing', async () => {
    const u = crypto.randomUUID();
    const hidden = await send('PUT', ref(x.psych1), tok.nurse, { ...body(x.psych1), status: 'superseded' });
    const free = await send('PUT', `DocumentReference/${u}`, tok.nurse, { ...body(x.psych1), id: u, status: 'superseded' });
    expect(shape(hidden, x.psych1.id)).toEqual(shape(free, u));
    expect((await get(ref(x.psych1), tok.gp)).body.meta.versionId).toBe(x.psych1.meta.versionId);
  });

  it('a PUT of a stored document may not add a relation, a tag or a profile', async () => {
    const d = await create(document(x.p1, REPORT, ref(x.gp), [], undefined, `meta ${RUN}`), tok.gp);
    const attempts: Json[] = [
      { ...body(d), relatesTo: [{ code: 'appends', target: { reference: ref(x.report1) } }] },
      { ...body(d), extension: [{ url: 'http://example.org/fhir/StructureDefinition/anything', valueString: 'x' }] },
      { ...body(d), date: '2020-01-01T00:00:00Z' },
      { ...body(d), meta: { tag: [{ system: 'urn:probe', code: 'x' }] } },
      { ...body(d), meta: { profile: ['http://hl7.org/fhir/StructureDefinition/DocumentReference'] } },
      { ...body(d), securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }], description: 'autre' },
    ];
    const statuses = [];
    for (const a of attempts) statuses.push((await send('PUT', ref(d), tok.gp, a)).status);
    expect(statuses).toEqual(attempts.map(() => 405));
    // what the PATCH may change, the PUT may change
    const allowed = await send('PUT', ref(d), tok.gp, { ...body(d), securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }] });
    expect(allowed.status).toBe(200);
  });

  it('a deactivated practitioner is refused on the next request although their token was remembered', async () => {
    const p = await create({ resourceType: 'Practitioner', active: true, name: [{ family: `Parti-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
    const token = await mint(ref(p));
    await create(consent(x.p1, ref(p), { type: 'permit', actor: [ircp(ref(p))] }), token);
    expect((await get(ref(x.report1), token)).status).toBe(200);
    expect((await send('PUT', ref(p), t.token, { ...body(p), active: false })).status).toBe(200);
    expect((await get(ref(x.report1), token)).status).toBeGreaterThanOrEqual(401);
    expect((await get(ref(x.report1), token)).status).toBeLessThan(404);
  });
});

import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { authorization, FHIR_JSON, startTarget, Target } from '../harness';
import { issueCertificate, professionalSubject, TestCertificate } from '../testCertificates';

/*
 * HTTPS with client certificates (docs/decisions/007-authentication.md, "Client
 * certificates"): a professional's certificate verified against TLS_CLIENT_CA names the
 * Practitioner carrying its RPPS number, and no token is needed on that connection; an
 * application with a token and no certificate uses the same server.
 */

const IDNAT_PS = 'urn:oid:1.2.250.1.71.4.2.1';
// RPPS numbers with a valid Luhn key
const KNOWN = '899700870589';
const UNKNOWN = '899700218896';
const INACTIVE = '810003421533';

interface Answer {
  status: number;
  /** The TLS session was resumed from an earlier connection (no new handshake). */
  resumed: boolean;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

let target: Target;
let dir: string;
let ca: TestCertificate;
let known: TestCertificate;
let unknown: TestCertificate;
let inactive: TestCertificate;
let selfSigned: TestCertificate;
let practitionerId: string;
let patientId: string;

/** One request over its own HTTPS connection, with a client certificate or not. */
function call(method: string, urlPath: string, opts: { cert?: TestCertificate; headers?: Record<string, string>; json?: unknown; agent?: https.Agent } = {}): Promise<Answer> {
  const url = new URL(`${target.base}/${urlPath}`);
  const body = opts.json === undefined ? undefined : JSON.stringify(opts.json);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        method,
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        ca: ca.pem,
        ...(opts.cert ? { cert: opts.cert.pem, key: opts.cert.keyPem } : {}),
        agent: opts.agent ?? false,
        headers: { accept: FHIR_JSON, ...(body ? { 'content-type': FHIR_JSON } : {}), ...opts.headers },
      },
      (res) => {
        const resumed = (res.socket as TLSSocket).isSessionReused();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode!, resumed, headers: res.headers, body: text ? JSON.parse(text) : undefined });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** As the unrestricted test client, by token and without a certificate. */
const asTestClient = (method: string, urlPath: string, json?: unknown) => call(method, urlPath, { headers: authorization(target.base), json });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtls-'));
  ca = issueCertificate({ subject: [{ shortName: 'C', value: 'FR' }, { shortName: 'CN', value: 'TEST AC IGC-SANTE PERSONNES' }], ca: true });
  const server = issueCertificate({ subject: [{ shortName: 'CN', value: 'localhost' }], issuer: ca, serverNames: ['localhost'] });
  known = issueCertificate({ subject: professionalSubject(KNOWN), issuer: ca });
  unknown = issueCertificate({ subject: professionalSubject(UNKNOWN), issuer: ca });
  inactive = issueCertificate({ subject: professionalSubject(INACTIVE), issuer: ca });
  selfSigned = issueCertificate({ subject: professionalSubject(KNOWN) });
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode: 0o600 });
    return file;
  };
  target = await startTarget({
    TLS_CERT: write('server.pem', server.pem),
    TLS_KEY: write('server.key', server.keyPem),
    TLS_CLIENT_CA: write('ca.pem', ca.pem),
    CORS_ORIGINS: 'https://app.example.fr',
  });
  const practitioner = await asTestClient('POST', 'Practitioner', {
    resourceType: 'Practitioner',
    active: true,
    identifier: [{ system: IDNAT_PS, value: KNOWN }],
    name: [{ family: 'MEDECIN', given: ['ANNE'] }],
  });
  expect(practitioner.status).toBe(201);
  practitionerId = practitioner.body.id;
  const retired = await asTestClient('POST', 'Practitioner', { resourceType: 'Practitioner', active: false, identifier: [{ system: IDNAT_PS, value: INACTIVE }] });
  expect(retired.status).toBe(201);
  const patient = await asTestClient('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'DUPONT', given: ['JEAN'] }] });
  expect(patient.status).toBe(201);
  patientId = patient.body.id;
});

afterAll(async () => {
  await target?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('HTTPS with client certificates', () => {
  it('serves HTTPS at the base URL it reports', () => {
    expect(target.base).toMatch(/^https:\/\/localhost:\d+\/fhir$/);
  });

  it('authenticates a professional by certificate alone, as the Practitioner with that RPPS number', async () => {
    const own = await call('GET', `Practitioner/${practitionerId}`, { cert: known });
    expect(own.status).toBe(200);
    expect(own.body.identifier[0].value).toBe(KNOWN);
    // the caller is that practitioner, not an unrestricted client: the policy applies
    const record = await call('GET', `Patient/${patientId}`, { cert: known });
    expect(record.status).toBe(403);
    expect(record.body.issue[0].diagnostics).toMatch(new RegExp(`Practitioner/${practitionerId}`));
    const write = await call('POST', 'Patient', { cert: known, json: { resourceType: 'Patient' } });
    expect(write.status).toBe(403);
    expect(write.body.issue[0].diagnostics).toMatch(/Only administrators write Patient/);
  });

  it('keeps authenticating on a resumed TLS session and on a kept-alive connection', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await call('GET', `Practitioner/${practitionerId}`, { cert: known, agent });
        expect(answer.status).toBe(200);
      }
    } finally {
      agent.destroy();
    }
    // a new connection resumes the agent's cached session: the certificate still names the caller
    const resuming = new https.Agent({ keepAlive: false });
    try {
      const answers: Answer[] = [];
      for (let i = 0; i < 3; i++) answers.push(await call('GET', `Practitioner/${practitionerId}`, { cert: known, agent: resuming }));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(answers.some((a) => a.resumed)).toBe(true);
      const record = await call('GET', `Patient/${patientId}`, { cert: known, agent: resuming });
      expect(record.status).toBe(403);
    } finally {
      resuming.destroy();
    }
  });

  it('serves a token-only client on the same server, and refuses a request with neither', async () => {
    const byToken = await asTestClient('GET', `Patient/${patientId}`);
    expect(byToken.status).toBe(200);
    const anonymous = await call('GET', `Patient/${patientId}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('Bearer');
  });

  it('lets the token decide when a request carries both', async () => {
    const both = await call('GET', `Patient/${patientId}`, { cert: known, headers: authorization(target.base) });
    expect(both.status).toBe(200);
    const badToken = await call('GET', `Patient/${patientId}`, { cert: known, headers: { authorization: 'Bearer not-a-jwt' } });
    expect(badToken.status).toBe(401);
    expect(badToken.headers['www-authenticate']).toMatch(/invalid_token/);
  });

  it('audits a request carrying both under the token that decided, not the certificate', async () => {
    const token = await target.issuer!.mint({ sub: 'anne-medecin', fhirUser: `Practitioner/${practitionerId}`, scope: 'user/*.rs' });
    // a refused access to a record is audited whatever the resource
    const both = await call('GET', `Patient/${patientId}`, { cert: known, headers: { authorization: `Bearer ${token}` } });
    expect(both.status).toBe(403);
    const admin = await target.issuer!.mint({ sub: 'auditor', scope: 'admin' });
    const trail = await call('GET', `AuditEvent?patient=Patient/${patientId}&_count=100`, { headers: { authorization: `Bearer ${admin}` } });
    expect(trail.status).toBe(200);
    const systems = (trail.body.entry ?? []).flatMap((e: any) => e.resource.agent.filter((a: any) => a.who?.identifier?.value === 'anne-medecin').map((a: any) => a.who.identifier.system));
    expect(systems.length).toBeGreaterThan(0);
    expect(new Set(systems)).toEqual(new Set([target.issuer!.issuer]));
  });

  it('refuses a certificate whose RPPS number names no Practitioner here (401)', async () => {
    const answer = await call('GET', `Practitioner/${practitionerId}`, { cert: unknown });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer');
    expect(answer.body.issue[0]).toMatchObject({ code: 'login', diagnostics: expect.stringMatching(/No Practitioner on this server carries the RPPS number/) });
  });

  it('refuses a certificate naming an inactive Practitioner (401)', async () => {
    const answer = await call('GET', `Practitioner/${practitionerId}`, { cert: inactive });
    expect(answer.status).toBe(401);
    expect(answer.body.issue[0].diagnostics).toMatch(/inactive/);
  });

  it('refuses a certificate the client CA did not issue, even beside a valid token', async () => {
    const alone = await call('GET', `Practitioner/${practitionerId}`, { cert: selfSigned });
    expect(alone.status).toBe(401);
    expect(alone.body.issue[0].diagnostics).toMatch(/not trusted by this server/);
    const withToken = await call('GET', `Patient/${patientId}`, { cert: selfSigned, headers: authorization(target.base) });
    expect(withToken.status).toBe(401);
  });

  it('does not accept the certificate alone for a request another site caused', async () => {
    for (const headers of [{ origin: 'https://app.example.fr' }, { origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }] as Record<string, string>[]) {
      const answer = await call('GET', `Practitioner/${practitionerId}`, { cert: known, headers });
      expect(answer.status).toBe(401);
      expect(answer.body.issue[0].diagnostics).toMatch(/another site caused/);
    }
    // the user's own navigation (typed URL, bookmark) is not caused by another site
    const typed = await call('GET', `Practitioner/${practitionerId}`, { cert: known, headers: { 'sec-fetch-site': 'none' } });
    expect(typed.status).toBe(200);
  });

  it('states the certificate service in the CapabilityStatement', async () => {
    const metadata = await call('GET', 'metadata');
    expect(metadata.status).toBe(200);
    const codes = metadata.body.rest[0].security.service.map((s: any) => s.coding[0].code);
    expect(codes).toEqual(['SMART-on-FHIR', 'Certificates']);
    expect(metadata.body.rest[0].security.description).toMatch(/Mutual TLS/);
  });
});

import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDevIssuer } from './access/authn/devIssuer';
import { loadConfig } from './config/config';

/**
 * WORKERS=n (docs/decisions/022-workers.md): the compiled server started as an operator
 * starts it, several processes on one port, PostgreSQL only.
 */
const root = path.resolve(__dirname, '..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-workers-'));

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  ended: Promise<number | null>;
}

function server(env: Record<string, string>): Run {
  const base: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k]) base[k] = process.env[k]!;
  const child = spawn(process.execPath, ['dist/src/server.js'], { cwd: root, env: { ...base, LOG_LEVEL: 'info', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Run = { child, stdout: '', stderr: '', ended: Promise.resolve(null) };
  child.stdout!.on('data', (d) => (r.stdout += d));
  child.stderr!.on('data', (d) => (r.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const closed = (s: NodeJS.ReadableStream) => new Promise<void>((resolve) => s.once('close', () => resolve()));
  r.ended = Promise.all([exited, closed(child.stdout!), closed(child.stderr!)]).then(([code]) => code);
  return r;
}

function logged(r: Run, message: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (r.stdout.includes(`"${message}"`)) {
        r.child.stdout!.off('data', check);
        resolve();
      }
    };
    r.child.stdout!.on('data', check);
    check();
    r.ended.then(() => reject(new Error(`ended before "${message}": ${r.stderr}`)));
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** One request on a connection of its own: the cluster hands each new connection to the next worker. */
function request(port: number, method: string, pathname: string, token: string, body?: unknown): Promise<{ status: number; requestId: string; body: any }> {
  const requestId = crypto.randomUUID();
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: `/fhir/${pathname}`, agent: false, headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json', 'x-request-id': requestId, ...(data ? { 'content-type': 'application/fhir+json' } : {}) } },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, requestId, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** The worker that logged the request `requestId` (its line is written just after the answer). */
async function workerOf(r: Run, requestId: string): Promise<number | undefined> {
  for (let tries = 0; tries < 100; tries++) {
    for (const line of r.stdout.split('\n')) {
      if (!line.includes(requestId)) continue;
      const entry = JSON.parse(line) as { requestId?: string; worker?: number; msg?: string };
      if (entry.requestId === requestId && entry.msg === 'request') return entry.worker;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return undefined;
}

beforeAll(() => {
  const build = spawnSync(process.execPath, ['scripts/build.cjs', '--if-stale'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
}, 300000);

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

it('refuses WORKERS above 1 on the embedded database, in one line', async () => {
  const running = server({ PORT: String(await freePort()), DATA_DIR: path.join(dataDir, 'embedded'), WORKERS: '2' });
  expect(await running.ended).toBe(2);
  const lines = running.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^Configuration error: WORKERS=2 needs PostgreSQL \(DATABASE_URL\): the embedded database lives inside one process/);
}, 300000);

const databaseUrl = process.env.DATABASE_URL;
if (databaseUrl) {
  console.info('workers: PostgreSQL, WORKERS=2 on one port');
  describe('WORKERS=2 on PostgreSQL', () => {
    const schema = `w_${crypto.randomBytes(6).toString('hex')}`;
    let running: Run;
    let port: number;
    let token: string;
    let dev: Awaited<ReturnType<typeof openDevIssuer>>;
    beforeAll(async () => {
      port = await freePort();
      const env = { PORT: String(port), DATA_DIR: dataDir, DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema, WORKERS: '2', SUBSCRIPTIONS_DISPATCHER: 'off' };
      running = server(env);
      await logged(running, 'FHIR server listening with workers');
      dev = await openDevIssuer(loadConfig(env));
      token = await dev.mintToken({ scope: 'conformance-testing', sub: 'workers-test' });
    }, 120000);
    afterAll(async () => {
      if (running.child.exitCode === null) running.child.kill('SIGTERM');
      await running.ended;
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end());
    });

    it('serves from two processes, and a profile written through one is used by the other at its next request', async () => {
      const url = `http://example.org/fhir/StructureDefinition/workers-${schema}`;
      const profile = {
        resourceType: 'StructureDefinition',
        url,
        name: 'PatientWithBirthDate',
        status: 'active',
        fhirVersion: '4.0.1',
        kind: 'resource',
        abstract: false,
        type: 'Patient',
        baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Patient',
        derivation: 'constraint',
        differential: { element: [{ id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1 }] },
      };
      const written = await request(port, 'POST', 'StructureDefinition', token, profile);
      expect(written.status).toBe(201);
      const writer = await workerOf(running, written.requestId);
      expect(writer).toBeDefined();
      // at once, without waiting for the other worker to hear of it: every request of each worker applies the profile
      const answers = [];
      for (let i = 0; i < 6; i++) {
        const refused = await request(port, 'POST', 'Patient', token, { resourceType: 'Patient', meta: { profile: [url] } });
        const accepted = await request(port, 'POST', 'Patient', token, { resourceType: 'Patient', meta: { profile: [url] }, birthDate: '2000-01-01' });
        answers.push(refused, accepted);
        expect(refused.status).toBe(422);
        expect(JSON.stringify(refused.body)).toMatch(/birthDate/);
        expect(accepted.status).toBe(201);
      }
      const workers = new Set(await Promise.all(answers.map((a) => workerOf(running, a.requestId))));
      expect(workers.size).toBe(2);
      expect([...workers].some((w) => w !== writer)).toBe(true);
    }, 120000);

    it('reads through any worker what another one wrote, with the page tokens of another', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await request(port, 'POST', 'Practitioner', token, { resourceType: 'Practitioner', name: [{ family: `Worker${schema}` }] })).body.id);
      for (const id of ids) expect((await request(port, 'GET', `Practitioner/${id}`, token)).status).toBe(200);
      // a page token signed by one worker is honoured by the other (the secret is in the database)
      const first = await request(port, 'GET', `Practitioner?family=Worker${schema}&_count=1`, token);
      const seen = new Set([first.body.entry[0].resource.id]);
      let next = first.body.link.find((l: { relation: string }) => l.relation === 'next')?.url as string | undefined;
      while (next) {
        const page = await request(port, 'GET', next.replace(/^.*?\/fhir\//, ''), token);
        expect(page.status).toBe(200);
        for (const e of page.body.entry ?? []) seen.add(e.resource.id);
        next = page.body.link.find((l: { relation: string }) => l.relation === 'next')?.url;
      }
      expect([...seen].sort()).toEqual([...ids].sort());
    }, 120000);

    it('reads a resource moved to another record through one worker where it went, through every worker (where each saw it before is only a hint)', async () => {
      const patient = async () => (await request(port, 'POST', 'Patient', token, { resourceType: 'Patient', name: [{ family: `Moved${schema}` }] })).body.id as string;
      const [from, to] = [await patient(), await patient()];
      const observation = (subject: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${subject}` } });
      const created = await request(port, 'POST', 'Observation', token, observation(from));
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      const fromToken = await dev.mintToken({ fhirUser: `Patient/${from}`, scope: 'patient/*.rs' });
      const toToken = await dev.mintToken({ fhirUser: `Patient/${to}`, scope: 'patient/*.rs' });
      // every worker reads it where it is first, and remembers that record
      const before = [];
      for (let i = 0; i < 4; i++) before.push(await request(port, 'GET', `Observation/${id}`, token), await request(port, 'GET', `Observation/${id}`, fromToken));
      for (const r of before) expect(r.status).toBe(200);
      expect(new Set(await Promise.all(before.map((r) => workerOf(running, r.requestId)))).size).toBe(2);
      const moved = await request(port, 'PUT', `Observation/${id}`, token, { ...observation(to), id });
      expect(moved.status).toBe(200);
      const after = [];
      for (let i = 0; i < 4; i++) {
        const read = await request(port, 'GET', `Observation/${id}`, token);
        expect(read.status).toBe(200);
        expect(read.body.subject.reference).toBe(`Patient/${to}`);
        const byNewOwner = await request(port, 'GET', `Observation/${id}`, toToken);
        expect(byNewOwner.status).toBe(200);
        const byFormerOwner = await request(port, 'GET', `Observation/${id}`, fromToken);
        expect(byFormerOwner.status).toBe(404);
        expect(JSON.stringify(byFormerOwner.body)).not.toContain('weight');
        after.push(read, byNewOwner, byFormerOwner);
      }
      expect(new Set(await Promise.all(after.map((r) => workerOf(running, r.requestId)))).size).toBe(2);
    }, 120000);

    it('stops every worker on SIGTERM and frees the port', async () => {
      running.child.kill('SIGTERM');
      expect(await running.ended).toBe(0);
      expect(running.stdout).toContain('"shutting down the workers: finishing in-flight requests"');
      expect(running.stdout).toContain('"stopped"');
      const refused = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => (socket.destroy(), resolve(false)));
        socket.once('error', () => resolve(true));
      });
      expect(refused).toBe(true);
    }, 120000);
  });
} else {
  console.info('workers: embedded database, one process: the tests of WORKERS=2 run with DATABASE_URL only');
}

import crypto from 'node:crypto';
import fs from 'node:fs';
import httpClient from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { http, startTarget, Target, authorization } from '../../conformance/harness';

/**
 * Raw Binary uploads are spooled under the data directory (SPOOL_DIR here), in a private
 * directory of the server's own that is emptied of what dead processes left at start and
 * removed at stop; each file goes once its request is answered, and the bytes spooled at
 * once are capped (503 with Retry-After past the cap).
 */
let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-spool-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** Files under the spool root, relative paths. */
function spooled(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out;
}

const until = async (condition: () => boolean) => {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
};

/** An upload the test sends piece by piece: `send` more bytes, `end` it, `status` once answered. */
function openUpload(t: Target, headers: Record<string, string | number> = {}) {
  const url = new URL(`${t.base}/Binary`);
  let answer: (r: { status: number; headers: httpClient.IncomingHttpHeaders }) => void;
  const answered = new Promise<{ status: number; headers: httpClient.IncomingHttpHeaders }>((resolve) => (answer = resolve));
  const req = httpClient.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/pdf', prefer: 'return=minimal', ...authorization(t.base), ...headers } }, (res) => {
    res.resume();
    answer({ status: res.statusCode!, headers: res.headers });
  });
  req.on('error', () => undefined);
  return { send: (data: Buffer) => req.write(data), end: (data?: Buffer) => req.end(data), answered };
}

describe('upload spool', () => {
  it('is emptied at start of what dead processes left, keeps live ones, and is removed at stop', async () => {
    const stale = path.join(root, '999999999-1-abc');
    fs.mkdirSync(stale);
    fs.writeFileSync(path.join(stale, 'half-upload'), 'patient document');
    fs.writeFileSync(path.join(root, 'stray'), 'x');
    // this very process under an earlier start (a restarted container with the same pid)
    const reused = path.join(root, `${process.pid}-1-old`);
    fs.mkdirSync(reused);
    // a live process's directory is not touched (pid 1 always runs)
    const live = path.join(root, `1-${Date.now()}-live`);
    fs.mkdirSync(live);
    fs.writeFileSync(path.join(live, 'in-flight'), 'x');

    const t = await startTarget({ SPOOL_DIR: root });
    try {
      expect(fs.existsSync(stale)).toBe(false);
      expect(fs.existsSync(reused)).toBe(false);
      expect(fs.existsSync(path.join(root, 'stray'))).toBe(false);
      expect(fs.existsSync(path.join(live, 'in-flight'))).toBe(true);
      const own = fs.readdirSync(root).filter((d) => d.startsWith(`${process.pid}-`));
      expect(own).toHaveLength(1);
      expect(fs.statSync(root).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.join(root, own[0])).mode & 0o777).toBe(0o700);

      // a file while its upload is open (0600), none once it is answered
      const upload = openUpload(t, { 'content-length': 2000 });
      upload.send(crypto.randomBytes(1000));
      await until(() => spooled().some((f) => f.startsWith(own[0])));
      const file = path.join(root, spooled().find((f) => f.startsWith(own[0]))!);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      upload.end(crypto.randomBytes(1000));
      expect((await upload.answered).status).toBe(201);
      await until(() => !fs.existsSync(file));
      // a refused upload leaves nothing either
      const empty = await http(t.base, 'Binary', { method: 'POST', body: Buffer.alloc(0), headers: { 'content-type': 'application/pdf' } });
      expect(empty.status).toBe(400);
      await until(() => spooled().filter((f) => f.startsWith(own[0])).length === 0);
    } finally {
      await t.close();
    }
    expect(fs.readdirSync(root)).toEqual([path.basename(live)]);
  });

  it('caps the bytes spooled at once: past SPOOL_MAX_BYTES an upload is answered 503 with Retry-After', async () => {
    const t = await startTarget({ SPOOL_DIR: root, BINARY_MAX_BYTES: '600k', SPOOL_MAX_BYTES: '1m' });
    try {
      const first = openUpload(t, { 'content-length': 600 * 1024 });
      first.send(crypto.randomBytes(500 * 1024));
      await until(() => spooled().reduce((n, f) => n + fs.statSync(path.join(root, f)).size, 0) >= 500 * 1024);

      // declared too large for what is left: refused before reading
      const declared = await http(t.base, 'Binary', { method: 'POST', body: crypto.randomBytes(600 * 1024), headers: { 'content-type': 'application/pdf' } });
      expect(declared.status).toBe(503);
      expect(declared.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(declared.body.resourceType).toBe('OperationOutcome');
      expect(declared.body.issue[0].code).toBe('transient');

      // sent without a length (chunked): refused once it passes the cap, its file removed
      const chunked = openUpload(t);
      for (let i = 0; i < 6; i++) chunked.send(crypto.randomBytes(100 * 1024));
      chunked.end();
      const refused = await chunked.answered;
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBeDefined();

      // a small one still fits
      const small = await http(t.base, 'Binary', { method: 'POST', body: crypto.randomBytes(1000), headers: { 'content-type': 'application/pdf' } });
      expect(small.status).toBe(201);

      first.end(crypto.randomBytes(100 * 1024));
      expect((await first.answered).status).toBe(201);
      await until(() => spooled().length === 0);
      // the room is back
      const after = await http(t.base, 'Binary', { method: 'POST', body: crypto.randomBytes(600 * 1024), headers: { 'content-type': 'application/pdf' } });
      expect(after.status).toBe(201);
      const read = await fetch(`${t.base}/Binary/${after.headers.get('location')!.split('/')[5]}`, { headers: { accept: 'application/pdf', ...authorization(t.base) } });
      expect(Buffer.from(await read.arrayBuffer()).length).toBe(600 * 1024);
    } finally {
      await t.close();
    }
  });
});

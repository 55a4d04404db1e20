import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { FHIR_JSON, authorization, startTarget, Target } from '../harness';
import { ref, requests } from '../accessFixtures';
import { contentSweep, parseArgs } from '../../scripts/contentSweep';

/**
 * Large Binary content in files beside the database (docs/decisions/036-binary-content-files.md),
 * over HTTP on a server of this process with a content directory of its own and a threshold
 * of 1 KiB: each file belongs to one row, is there before the row commits, goes when the
 * row's transaction rolls back or after the commit that erases its record; a missing or
 * truncated file is a server error, never a short document.
 */
// a server of this process reads its content directory and its database: a server at FHIR_BASE_URL exposes neither
const inProcess = process.env.FHIR_BASE_URL ? describe.skip : describe;
if (process.env.FHIR_BASE_URL) console.warn(`binary-files.test.ts does not run against ${process.env.FHIR_BASE_URL}: it reads the server's content directory and database`);

let t: Target;
let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'content-files-'));
  t = await startTarget({ CONTENT_DIR: dir, CONTENT_FILE_MIN_BYTES: '1k' });
});
afterAll(async () => {
  await t.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const { create, get, send, mint } = requests(() => t);
const knex = (): Knex => t.running!.ctx.db.knex;

/** Every file under the content directory, relative to it. */
function filesOnDisk(): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

/** The file the row of a version names (null: content in the database). */
async function fileOf(id: string, versionId = 1): Promise<string | null> {
  const res = await knex().raw('SELECT file FROM binary_content WHERE id = ? AND version_id = ?', [id, versionId]);
  expect(res.rows).toHaveLength(1);
  return res.rows[0].file;
}

async function upload(bytes: Buffer, contentType = 'application/pdf'): Promise<string> {
  const res = await fetch(`${t.base}/Binary`, { method: 'POST', body: bytes, headers: { 'content-type': contentType, ...authorization(t.base) } });
  expect(res.status).toBe(201);
  return /\/Binary\/([^/]+)\/_history\/1$/.exec(res.headers.get('location') ?? '')![1];
}

async function download(id: string, headers: Record<string, string> = {}, version?: number): Promise<{ status: number; data: Buffer; headers: Headers }> {
  const res = await fetch(`${t.base}/Binary/${id}${version ? `/_history/${version}` : ''}`, { headers: { accept: 'application/pdf', ...authorization(t.base), ...headers } });
  return { status: res.status, headers: res.headers, data: Buffer.from(await res.arrayBuffer()) };
}

/** The content directory as it is once the asynchronous removals have run (they follow the transaction's end). */
async function settledFiles(expected: string[]): Promise<string[]> {
  let now = filesOnDisk();
  for (let i = 0; i < 100 && JSON.stringify(now) !== JSON.stringify(expected); i++) {
    await new Promise((r) => setTimeout(r, 20));
    now = filesOnDisk();
  }
  return now;
}

inProcess('where content goes', () => {
  it('a raw upload at or over the threshold is a private file named by its row, read back whole and by range', async () => {
    const before = filesOnDisk();
    const bytes = crypto.randomBytes(700 * 1024);
    const id = await upload(bytes);
    const file = await fileOf(id);
    expect(file).toMatch(/^[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{32}$/);
    expect(filesOnDisk()).toEqual([...before, file].sort());
    expect(fs.readFileSync(path.join(dir, file!)).equals(bytes)).toBe(true);
    expect(fs.statSync(path.join(dir, file!)).mode & 0o777).toBe(0o600);
    // no chunk of it in the database
    expect((await knex().raw('SELECT count(*)::int AS n FROM binary_chunk WHERE id = ?', [id])).rows[0].n).toBe(0);
    const whole = await download(id);
    expect([whole.status, whole.headers.get('content-length'), whole.data.equals(bytes)]).toEqual([200, String(bytes.length), true]);
    const part = await download(id, { range: 'bytes=300000-300099' });
    expect([part.status, part.headers.get('content-range')]).toEqual([206, `bytes 300000-300099/${bytes.length}`]);
    expect(part.data.equals(bytes.subarray(300000, 300100))).toBe(true);
    // as FHIR JSON, the same bytes in base64
    const json = await get(`Binary/${id}`);
    expect(Buffer.from(json.body.data, 'base64').equals(bytes)).toBe(true);
  });

  it('content under the threshold stays in the database', async () => {
    const before = filesOnDisk();
    const bytes = crypto.randomBytes(1000);
    const id = await upload(bytes);
    expect(await fileOf(id)).toBeNull();
    expect(filesOnDisk()).toEqual(before);
    expect((await download(id)).data.equals(bytes)).toBe(true);
  });

  it('base64 data of FHIR JSON over the threshold is written to a file too', async () => {
    const bytes = crypto.randomBytes(5000);
    const created = await create({ resourceType: 'Binary', contentType: 'text/plain', data: bytes.toString('base64') });
    const file = await fileOf(created.id);
    expect(file).not.toBeNull();
    expect(fs.readFileSync(path.join(dir, file!)).equals(bytes)).toBe(true);
    expect(Buffer.from((await get(`Binary/${created.id}`)).body.data, 'base64').equals(bytes)).toBe(true);
  });
});

inProcess('versions', () => {
  it('a new content is a new file; the earlier version keeps its own', async () => {
    const first = crypto.randomBytes(3000);
    const second = crypto.randomBytes(4000);
    const id = await upload(first);
    const res = await fetch(`${t.base}/Binary/${id}`, { method: 'PUT', body: second, headers: { 'content-type': 'application/pdf', ...authorization(t.base) } });
    expect(res.status).toBe(200);
    const [one, two] = [await fileOf(id, 1), await fileOf(id, 2)];
    expect(one).not.toBe(two);
    expect((await download(id, {}, 1)).data.equals(first)).toBe(true);
    expect((await download(id)).data.equals(second)).toBe(true);
  });

  it('a version that keeps the content ($meta-add) names a file of its own: a second link to the same bytes', async () => {
    const bytes = crypto.randomBytes(3000);
    const id = await upload(bytes);
    const res = await send('POST', `Binary/${id}/$meta-add`, undefined, {
      resourceType: 'Parameters',
      parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'https://example.org/tags', code: 'kept' }] } }],
    });
    expect(res.status).toBe(200);
    const [one, two] = [await fileOf(id, 1), await fileOf(id, 2)];
    expect(two).not.toBeNull();
    expect(two).not.toBe(one);
    expect(fs.statSync(path.join(dir, two!)).ino).toBe(fs.statSync(path.join(dir, one!)).ino);
    expect(fs.statSync(path.join(dir, two!)).nlink).toBe(2);
    expect((await download(id)).data.equals(bytes)).toBe(true);
    expect((await download(id, {}, 1)).data.equals(bytes)).toBe(true);
  });
});

inProcess('patches', () => {
  const jsonPatch = (id: string, ops: unknown[]) =>
    fetch(`${t.base}/Binary/${id}`, { method: 'PATCH', body: JSON.stringify(ops), headers: { 'content-type': 'application/json-patch+json', accept: FHIR_JSON, ...authorization(t.base) } });

  it('a patch of contentType keeps the bytes under a link of their own, served in the new type', async () => {
    const bytes = crypto.randomBytes(3000);
    const id = await upload(bytes);
    expect((await jsonPatch(id, [{ op: 'replace', path: '/contentType', value: 'application/octet-stream' }])).status).toBe(200);
    const [one, two] = [await fileOf(id, 1), await fileOf(id, 2)];
    expect(two).not.toBe(one);
    expect(fs.statSync(path.join(dir, two!)).ino).toBe(fs.statSync(path.join(dir, one!)).ino);
    const raw = await download(id, { accept: 'application/octet-stream' });
    expect([raw.status, raw.headers.get('content-type'), raw.data.equals(bytes)]).toEqual([200, 'application/octet-stream', true]);
  });

  it('a patch of data is new content in a new file; the earlier version keeps its own', async () => {
    const first = crypto.randomBytes(3000);
    const second = crypto.randomBytes(5000);
    const id = await upload(first);
    expect((await jsonPatch(id, [{ op: 'replace', path: '/data', value: second.toString('base64') }])).status).toBe(200);
    expect(fs.readFileSync(path.join(dir, (await fileOf(id, 2))!)).equals(second)).toBe(true);
    expect((await download(id)).data.equals(second)).toBe(true);
    expect((await download(id, {}, 1)).data.equals(first)).toBe(true);
    // not base64: refused, nothing written
    expect((await jsonPatch(id, [{ op: 'replace', path: '/data', value: '!!' }])).status).toBe(400);
    expect((await get(`Binary/${id}`)).body.meta.versionId).toBe('2');
  });
});

inProcess('who reads a content file', () => {
  it("a Binary in one patient's record comes back, from its file, to that patient only: another patient gets nothing by any route", async () => {
    const owner = await create({ resourceType: 'Patient', name: [{ family: `Owner-${crypto.randomBytes(3).toString('hex')}` }], birthDate: '1980-01-01' });
    const other = await create({ resourceType: 'Patient', name: [{ family: `Other-${crypto.randomBytes(3).toString('hex')}` }], birthDate: '1980-01-01' });
    const bytes = crypto.randomBytes(4000);
    const res = await fetch(`${t.base}/Binary`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/pdf', 'x-security-context': ref(owner), ...authorization(t.base) } });
    expect(res.status).toBe(201);
    const id = /\/Binary\/([^/]+)\/_history\/1$/.exec(res.headers.get('location') ?? '')![1];
    expect(await fileOf(id)).not.toBeNull();
    const [mine, theirs] = [await mint(ref(owner), 'patient/*.cruds'), await mint(ref(other), 'patient/*.cruds')];
    const raw = (token: string, path: string, headers: Record<string, string> = {}) =>
      fetch(`${t.base}/${path}`, { headers: { accept: 'application/pdf', authorization: `Bearer ${token}`, ...headers } });
    // the positive control: the owner reads it, raw and by range
    const own = await raw(mine, `Binary/${id}`);
    expect([own.status, Buffer.from(await own.arrayBuffer()).equals(bytes)]).toEqual([200, true]);
    expect((await raw(mine, `Binary/${id}`, { range: 'bytes=0-9' })).status).toBe(206);
    // another patient: not known by read, vread, range, JSON, history, search, batch, PATCH
    for (const [path, headers] of [
      [`Binary/${id}`, {}],
      [`Binary/${id}/_history/1`, {}],
      [`Binary/${id}`, { range: 'bytes=0-9' }],
      [`Binary/${id}`, { accept: FHIR_JSON }],
      [`Binary/${id}/_history`, { accept: FHIR_JSON }],
    ] as [string, Record<string, string>][]) {
      const answer = await raw(theirs, path, headers);
      const text = Buffer.from(await answer.arrayBuffer());
      expect([path, answer.status]).toEqual([path, 404]);
      expect(text.includes(bytes.subarray(0, 16))).toBe(false);
    }
    const found = await get(`Binary?_id=${id}`, theirs);
    expect([found.status, found.body.entry ?? []]).toEqual([200, []]);
    const batch = await send('POST', '', theirs, { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Binary/${id}` } }] });
    expect(batch.body.entry[0].response.status).toMatch(/^404/);
    expect(JSON.stringify(batch.body)).not.toContain(bytes.toString('base64').slice(0, 24));
    const patched = await fetch(`${t.base}/Binary/${id}`, {
      method: 'PATCH',
      body: JSON.stringify([{ op: 'test', path: '/data', value: bytes.toString('base64') }]),
      headers: { 'content-type': 'application/json-patch+json', accept: FHIR_JSON, authorization: `Bearer ${theirs}` },
    });
    expect(patched.status).toBe(404);
  });
});

inProcess('transactions', () => {
  it('a transaction that fails leaves no file behind', async () => {
    const before = filesOnDisk();
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: { resourceType: 'Binary', contentType: 'text/plain', data: crypto.randomBytes(4000).toString('base64') }, request: { method: 'POST', url: 'Binary' } },
        // a reference to a resource this server does not have: the whole transaction is refused
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${crypto.randomUUID()}` } }, request: { method: 'POST', url: 'Observation' } },
      ],
    };
    const res = await send('POST', '', undefined, bundle);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(await settledFiles(before)).toEqual(before);
  });

  it('a transaction that commits keeps its file', async () => {
    const before = filesOnDisk();
    const bytes = crypto.randomBytes(4000);
    const res = await send('POST', '', undefined, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Binary', contentType: 'text/plain', data: bytes.toString('base64') }, request: { method: 'POST', url: 'Binary' } }],
    });
    expect(res.status).toBe(200);
    const id = /Binary\/([^/]+)/.exec(res.body.entry[0].response.location)![1];
    const file = await fileOf(id);
    expect(await settledFiles([...before, file!].sort())).toEqual([...before, file!].sort());
  });
});

inProcess('erasure', () => {
  it("a record's deletion removes the files of its Binaries; another record's stay", async () => {
    const make = async (name: string) => {
      const patient = await create({ resourceType: 'Patient', name: [{ family: `${name}-${crypto.randomBytes(3).toString('hex')}` }], birthDate: '1980-01-01' });
      const binary = await create({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: ref(patient) }, data: crypto.randomBytes(3000).toString('base64') });
      return { patient, binary, file: (await fileOf(binary.id))! };
    };
    const gone = await make('Efface');
    const kept = await make('Garde');
    expect(fs.existsSync(path.join(dir, gone.file))).toBe(true);
    const token = await mint(ref(gone.patient), 'patient/*.cruds');
    const res = await send('POST', `Patient/${gone.patient.id}/$close?mode=delete`, token, { resourceType: 'Parameters' });
    expect(res.status).toBe(200);
    const expected = filesOnDisk().filter((f) => f !== gone.file);
    expect(await settledFiles(expected)).toEqual(expected);
    expect(fs.existsSync(path.join(dir, kept.file))).toBe(true);
    expect((await get(`Binary/${kept.binary.id}`)).status).toBe(200);
  });
});

inProcess('a file that is not what its row says', () => {
  it.each([
    ['missing', (full: string) => fs.rmSync(full)],
    ['truncated', (full: string) => fs.truncateSync(full, 100)],
  ])('%s: the read is a server error with an OperationOutcome, not a short document', async (_, damage) => {
    const id = await upload(crypto.randomBytes(2000));
    damage(path.join(dir, (await fileOf(id))!));
    const raw = await download(id);
    expect(raw.status).toBe(500);
    expect(JSON.parse(raw.data.toString('utf8')).resourceType).toBe('OperationOutcome');
    const json = await fetch(`${t.base}/Binary/${id}`, { headers: { accept: FHIR_JSON, ...authorization(t.base) } });
    expect(json.status).toBe(500);
  });
});

inProcess('the sweep of files no row names', () => {
  it('lists, then removes, the files older than the delay that no row names; named and young files stay', async () => {
    const id = await upload(crypto.randomBytes(3000));
    const named = (await fileOf(id))!;
    const stray = (hex: string) => {
      const name = path.join(hex.slice(0, 2), hex.slice(2, 4), hex);
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), 'left by a killed process');
      return name;
    };
    const old = stray('ab'.repeat(16));
    const young = stray('cd'.repeat(16));
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    fs.utimesSync(path.join(dir, old), hoursAgo, hoursAgo);
    // the named file is as old: its row, not its age, keeps it
    fs.utimesSync(path.join(dir, named), hoursAgo, hoursAgo);
    const lines: string[] = [];
    const listed = await contentSweep(knex(), { dir, olderThanMinutes: 60, remove: false, print: (l) => lines.push(l) });
    expect(listed).toEqual([old]);
    expect(fs.existsSync(path.join(dir, old))).toBe(true);
    expect(lines.at(-1)).toMatch(/1 named by no row \(--delete removes them\)$/);
    expect(await contentSweep(knex(), { dir, olderThanMinutes: 60, remove: true, print: () => undefined })).toEqual([old]);
    expect([fs.existsSync(path.join(dir, old)), fs.existsSync(path.join(dir, young)), fs.existsSync(path.join(dir, named))]).toEqual([false, true, true]);
    expect((await download(id)).status).toBe(200);
    fs.rmSync(path.join(dir, young));
  });

  it('takes its delay in minutes and --delete', () => {
    expect(parseArgs([])).toEqual({ olderThanMinutes: 60, remove: false });
    expect(parseArgs(['--older-than', '5', '--delete'])).toEqual({ olderThanMinutes: 5, remove: true });
    expect(() => parseArgs(['--older-than', 'soon'])).toThrow(/usage content-sweep/);
  });
});

inProcess('the setting', () => {
  it('a server without a content directory keeps every content in the database', async () => {
    const plain = await startTarget();
    try {
      const res = await fetch(`${plain.base}/Binary`, { method: 'POST', body: crypto.randomBytes(2 * 1024 * 1024), headers: { 'content-type': 'application/pdf', ...authorization(plain.base) } });
      expect(res.status).toBe(201);
      const id = /\/Binary\/([^/]+)\/_history/.exec(res.headers.get('location') ?? '')![1];
      const row = await plain.running!.ctx.db.knex.raw('SELECT file FROM binary_content WHERE id = ?', [id]);
      // the suite may run with CONTENT_DIR set for every server (.ci/run): then this server has one too
      expect(row.rows[0].file === null).toBe(!process.env.CONTENT_DIR);
    } finally {
      await plain.close();
    }
  });
});


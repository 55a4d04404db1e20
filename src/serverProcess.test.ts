import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { openDevIssuer } from './access/authn/devIssuer';
import { loadConfig } from './config/config';

/**
 * The server as an operator runs it: `npm start` and `node dist/src/server.js` in processes
 * of their own, stopped by signals, failing at start-up with one line.
 */
const root = path.resolve(__dirname, '..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-process-'));

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves once every process writing to the pipes (npm and the server it started) has exited. */
  ended: Promise<number | null>;
}

function run(command: string, args: string[], env: Record<string, string>): Run {
  const base: Record<string, string> = {};
  // only what a shell would give: the suite's own database settings stay out unless passed
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k]) base[k] = process.env[k]!;
  const child = spawn(command, args, { cwd: root, env: { ...base, LOG_LEVEL: 'info', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Run = { child, stdout: '', stderr: '', ended: Promise.resolve(null) };
  child.stdout!.on('data', (d) => (r.stdout += d));
  child.stderr!.on('data', (d) => (r.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const closed = (s: NodeJS.ReadableStream) => new Promise<void>((resolve) => s.once('close', () => resolve()));
  r.ended = Promise.all([exited, closed(child.stdout!), closed(child.stderr!)]).then(([code]) => code);
  return r;
}

/** Waits for the server's "listening" log line (or for the process to end, failing). */
function listening(r: Run): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (r.stdout.includes('"FHIR server listening"')) {
        r.child.stdout!.off('data', check);
        resolve();
      }
    };
    r.child.stdout!.on('data', check);
    check();
    r.ended.then(() => reject(new Error(`ended before listening: ${r.stderr}`)));
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** stderr is one line, with no stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0];
}

const server = (env: Record<string, string>) => run(process.execPath, ['dist/src/server.js'], env);

beforeAll(() => {
  // the compiled server is what runs: built now if the sources changed since the last build
  const build = spawnSync(process.execPath, ['scripts/build.cjs', '--if-stale'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
}, 300000);

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('the server process', () => {
  it('stops gracefully when the npm start process gets SIGTERM, freeing its port and its data directory', async () => {
    const port = await freePort();
    const npm = run('npm', ['start'], { PORT: String(port), DATA_DIR: dataDir });
    await listening(npm);
    expect(await refused(port)).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'server.lock'))).toBe(true);
    // the server npm started runs with the embedded database's start-time memory settings
    // npm's shell execs the launcher, which execs node: the server is npm's child
    const pid = spawnSync('ps', ['--ppid', String(npm.child.pid), '-o', 'pid='], { encoding: 'utf8' }).stdout.trim();
    expect(pid).toMatch(/^\d+$/);
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--max-semi-space-size=4');
    expect(fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('MALLOC_ARENA_MAX=2');
    npm.child.kill('SIGTERM');
    await npm.ended;
    expect(npm.stdout).toContain('"shutting down: finishing in-flight requests"');
    expect(npm.stdout).toContain('"stopped"');
    expect(await refused(port)).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'server.lock'))).toBe(false);
  }, 600000);

  it.each([
    ['embedded: both memory settings', {}, '--max-semi-space-size=4 dist/src/server.js', '2'],
    ['PostgreSQL: neither', { DATABASE_URL: 'postgres://db/fhir' }, 'dist/src/server.js', ''],
    ['the operator\'s arena count kept', { MALLOC_ARENA_MAX: '8' }, '--max-semi-space-size=4 dist/src/server.js', '8'],
    ['the operator\'s young generation kept', { NODE_OPTIONS: '--max-semi-space-size=16' }, 'dist/src/server.js', '2'],
  ])('the launcher npm start execs gives %s (docs/decisions/027-embedded-memory.md)', (_name, env, args, arenas) => {
    // a stand-in for node that prints what it was given
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-launch-'));
    try {
      const fake = path.join(bin, 'node');
      fs.writeFileSync(fake, '#!/bin/sh\necho "$MALLOC_ARENA_MAX|$*"\n', { mode: 0o755 });
      const out = spawnSync('sh', ['scripts/start.sh'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH!, NODE: fake, ...env } });
      expect(out.status).toBe(0);
      const [given, argv] = out.stdout.trim().split('|');
      expect(given).toBe(arenas);
      expect(argv.replace(/\S*scripts\/\.\.\//, '')).toBe(args);
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  it('stops gracefully on SIGINT', async () => {
    const port = await freePort();
    const running = server({ PORT: String(port), DATA_DIR: dataDir });
    await listening(running);
    running.child.kill('SIGINT');
    expect(await running.ended).toBe(0);
    expect(running.stdout).toContain('"stopped"');
    expect(await refused(port)).toBe(true);
  }, 300000);

  it('keeps an answered write when killed with SIGKILL (docs/decisions/032-embedded-durability.md)', async () => {
    const own = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-kill-'));
    try {
      const port = await freePort();
      const env = { PORT: String(port), DATA_DIR: own };
      const first = server(env);
      await listening(first);
      const base = `http://127.0.0.1:${port}/fhir`;
      const config = loadConfig({ ...env, HOST: '127.0.0.1' });
      const token = await (await openDevIssuer(config)).mintToken({ scope: 'admin' });
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' };
      const created = await fetch(`${base}/Patient`, { method: 'POST', headers, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Killed' }] }) });
      expect(created.status).toBe(201);
      const id = ((await created.json()) as { id: string }).id;
      first.child.kill('SIGKILL');
      await first.ended;
      // the killed server left its lock: the next one finds it stale and opens the database
      expect(fs.existsSync(path.join(own, 'server.lock'))).toBe(true);
      const second = server(env);
      try {
        await listening(second);
        const read = await fetch(`${base}/Patient/${id}`, { headers });
        expect(read.status).toBe(200);
        expect(((await read.json()) as { name: { family: string }[] }).name[0].family).toBe('Killed');
      } finally {
        second.child.kill('SIGTERM');
        await second.ended;
      }
    } finally {
      fs.rmSync(own, { recursive: true, force: true });
    }
  }, 300000);

  it('refuses to start a second server on the same data directory, with one line', async () => {
    const first = server({ PORT: String(await freePort()), DATA_DIR: dataDir });
    try {
      await listening(first);
      const second = server({ PORT: String(await freePort()), DATA_DIR: dataDir });
      expect(await second.ended).toBe(1);
      expect(oneLine(second.stderr)).toBe(`Cannot start: DATA_DIR ${dataDir} is in use by another server (pid ${first.child.pid}): stop it, or give this one another DATA_DIR`);
    } finally {
      first.child.kill('SIGTERM');
      await first.ended;
    }
  }, 300000);

  it('says in one line that its port is in use', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const running = server({ PORT: String(port), DATA_DIR: dataDir });
      expect(await running.ended).toBe(1);
      expect(oneLine(running.stderr)).toBe(`Cannot start: 127.0.0.1:${port} is already in use by another process (choose another PORT, or stop that process)`);
      // what it had opened is closed: the data directory is free for the next server
      expect(fs.existsSync(path.join(dataDir, 'server.lock'))).toBe(false);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  }, 300000);

  it('says in one line that its data directory cannot be used', async () => {
    const notADirectory = path.join(dataDir, 'a-file');
    fs.writeFileSync(notADirectory, '');
    const running = server({ PORT: String(await freePort()), DATA_DIR: notADirectory });
    expect(await running.ended).toBe(1);
    expect(oneLine(running.stderr)).toMatch(new RegExp(`^Cannot start: cannot use ${notADirectory}\\b.*check DATA_DIR`));
  }, 300000);

  it('says in one line that its content directory cannot be used, and leaves the data directory free', async () => {
    const notADirectory = path.join(dataDir, 'a-content-file');
    fs.writeFileSync(notADirectory, '');
    const running = server({ PORT: String(await freePort()), DATA_DIR: dataDir, CONTENT_DIR: path.join(notADirectory, 'content') });
    expect(await running.ended).toBe(1);
    expect(oneLine(running.stderr)).toBe(`Cannot start: cannot use the content directory ${path.join(notADirectory, 'content')} (CONTENT_DIR): ENOTDIR`);
    expect(fs.existsSync(path.join(dataDir, 'server.lock'))).toBe(false);
  }, 300000);

  it('says in one line that the database cannot be reached', async () => {
    const port = await freePort();
    const running = server({ PORT: String(await freePort()), DATABASE_URL: `postgres://fhir:secret@127.0.0.1:${port}/fhir` });
    expect(await running.ended).toBe(1);
    expect(oneLine(running.stderr)).toBe(
      `Cannot start: cannot connect to the database at DATABASE_URL postgres://fhir:***@127.0.0.1:${port}/fhir (connection refused: is PostgreSQL running there?)`,
    );
  }, 300000);
});

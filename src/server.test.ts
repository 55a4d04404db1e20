import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { http, actAsTestClient } from '../conformance/harness';
import { loadConfig } from './config/config';
import { createLogger } from './log';
import { startServer, tokenCommandPrefix } from './server';

/** Data survives a restart: on disk under DATA_DIR (embedded) or in the PostgreSQL schema. */
describe('server lifecycle', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-data-'));
  const schema = `restart_${crypto.randomBytes(4).toString('hex')}`;
  const env = {
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    BUNDLE_MAX_ENTRIES: '1000',
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema } : {}),
  };

  afterAll(async () => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (process.env.DATABASE_URL) {
      const admin = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
      await admin.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.destroy();
    }
  });

  it('keeps resources and their history across a restart, and migrates only once', async () => {
    const first = await startServer(loadConfig(env), createLogger('silent'));
    await actAsTestClient(first);
    const created = await http(first.url, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Persistant' }] } });
    expect(created.status).toBe(201);
    await http(first.url, `Patient/${created.body.id}`, { method: 'PUT', json: { ...created.body, gender: 'other' } });
    await first.close();
    if (!process.env.DATABASE_URL) expect(fs.existsSync(path.join(dataDir, 'pgdata'))).toBe(true);

    const second = await startServer(loadConfig(env), createLogger('silent'));

    await actAsTestClient(second);
    try {
      const read = await http(second.url, `Patient/${created.body.id}`);
      expect(read.status).toBe(200);
      expect(read.body.gender).toBe('other');
      expect(read.body.meta.versionId).toBe('2');
      const v1 = await http(second.url, `Patient/${created.body.id}/_history/1`);
      expect(v1.body.name[0].family).toBe('Persistant');
      const found = await http(second.url, 'Patient?name=persist');
      expect(found.body.total).toBe(1);
      expect((await http(second.url.replace(/\/fhir$/, ''), 'healthz')).body.status).toBe('ok');
    } finally {
      await second.close();
    }
  });

  it('finishes in-flight requests on shutdown, then refuses new connections', async () => {
    const running = await startServer(loadConfig(env), createLogger('silent'));
    await actAsTestClient(running);
    const entry = Array.from({ length: 300 }, (_, i) => ({ resource: { resourceType: 'Patient', name: [{ family: `Lot${i}` }] }, request: { method: 'POST', url: 'Patient' } }));
    // close only once the server has the request (a loaded machine may take a while to send it)
    const received = new Promise((r) => running.server.once('request', r));
    const inFlight = http(running.url, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry } });
    await received;
    await new Promise((r) => setTimeout(r, 20));
    const closed = running.close();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body.entry).toHaveLength(300);
    await closed;
    await expect(fetch(`${running.url}/metadata`)).rejects.toThrow();
  });
  it('stops the exports it runs before closing: an export kicked off just before is ended after a restart, never left in progress', async () => {
    const first = await startServer(loadConfig(env), createLogger('silent'));
    await actAsTestClient(first);
    // enough rows for the export to be still running when the server is told to close
    const entry = Array.from({ length: 1000 }, (_, i) => ({ resource: { resourceType: 'Patient', name: [{ family: `Exporte${i}` }] }, request: { method: 'POST', url: 'Patient' } }));
    expect((await http(first.url, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry } })).status).toBe(200);
    const kickOff = await http(first.url, '$export?_type=Patient', { headers: { prefer: 'respond-async' } });
    expect(kickOff.status).toBe(202);
    const status = `_bulk/${kickOff.headers.get('content-location')!.split('/_bulk/')[1]}`;
    await first.close();

    const second = await startServer(loadConfig(env), createLogger('silent'));
    await actAsTestClient(second);
    try {
      const res = await http(second.url, status);
      // completed before the close reached it, or stopped by it and said so; not in progress
      expect(res.status).not.toBe(202);
      if (res.status === 200) expect(res.body.output.length).toBeGreaterThan(0);
      else expect(res.body.issue[0].diagnostics).toBe('The export failed: the server stopped during the export');
    } finally {
      await second.close();
    }
  });
});

describe('the token command printed at start-up', () => {
  it.each([
    [{}, ''],
    [{ PORT: '8097' }, 'PORT=8097 '],
    [{ PORT: '8097', DATA_DIR: '/srv/dmp' }, 'PORT=8097 DATA_DIR=/srv/dmp '],
    [{ BASE_URL: 'https://dmp.example/fhir', PORT: '8097' }, 'BASE_URL=https://dmp.example/fhir '],
  ])('%j → %j', (env, prefix) => expect(tokenCommandPrefix(env)).toBe(prefix));
});

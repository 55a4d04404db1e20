import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { http, actAsTestClient } from '../conformance/harness';
import { loadConfig } from './config/config';
import { createLogger } from './log';
import { startServer } from './server';

/** Every file under `dir` with its permission bits (symbolic links left out). */
function modes(dir: string): { file: string; mode: number; directory: boolean }[] {
  const out: { file: string; mode: number; directory: boolean }[] = [];
  const walk = (p: string) => {
    const stat = fs.lstatSync(p);
    if (stat.isSymbolicLink()) return;
    out.push({ file: path.relative(dir, p) || '.', mode: stat.mode & 0o777, directory: stat.isDirectory() });
    if (stat.isDirectory()) for (const entry of fs.readdirSync(p)) walk(path.join(p, entry));
  };
  walk(dir);
  return out;
}

const loose = (entries: ReturnType<typeof modes>) => entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.file} ${e.mode.toString(8)}`);

describe('the embedded data directory', () => {
  let root: string;
  const umask = process.umask();
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-modes-'));
    // as a default umask would leave files: readable (and here writable) by others
    process.umask(0);
  });
  afterEach(() => {
    process.umask(umask);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('is created 0700 with files 0600 (database files, spool), and nothing is open to others', async () => {
    const dataDir = path.join(root, 'data');
    const running = await startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir }), createLogger('silent'));
    await actAsTestClient(running);
    try {
      const created = await http(running.url, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Modes' }] } });
      expect(created.status).toBe(201);
      // a document large enough for a content file (docs/decisions/036-binary-content-files.md)
      const upload = await http(running.url, 'Binary', { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024, 7), headers: { 'content-type': 'application/pdf' } });
      expect(upload.status).toBe(201);
    } finally {
      await running.close();
    }
    const entries = modes(dataDir);
    expect(entries.length).toBeGreaterThan(100);
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dataDir, 'spool')).mode & 0o777).toBe(0o700);
    expect(entries.filter((e) => e.file.startsWith('content/') && !e.directory)).toHaveLength(1);
    expect(loose(entries)).toEqual([]);
    for (const e of entries) expect([e.file, e.mode & 0o700]).toEqual([e.file, e.directory ? 0o700 : e.mode & 0o700]);
  });

  it('narrows at start what an earlier version left open to others', async () => {
    const dataDir = path.join(root, 'data');
    const first = await startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir }), createLogger('silent'));
    await actAsTestClient(first);
    await first.close();
    // as files were before: world-writable
    for (const e of modes(dataDir)) fs.chmodSync(path.join(dataDir, e.file), e.directory ? 0o777 : 0o666);
    expect(loose(modes(dataDir)).length).toBeGreaterThan(100);
    const second = await startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir }), createLogger('silent'));
    await actAsTestClient(second);
    try {
      expect(loose(modes(dataDir))).toEqual([]);
      expect((await http(second.url, 'Patient?name=modes')).status).toBe(200);
    } finally {
      await second.close();
    }
  });
});

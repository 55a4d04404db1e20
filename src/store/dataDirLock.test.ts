import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config/config';
import { openDatabase } from './database';
import { DataDirLocked, LOCK_FILE, lockDataDir } from './dataDirLock';

/** The pid of a process that has exited: no process has it now (pids are not reused that fast). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('the lock of an embedded data directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-lock-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is refused to a second holder while held, and free again once released', () => {
    const first = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(DataDirLocked);
    expect(() => lockDataDir(dir)).toThrow(`DATA_DIR ${dir} is already open in this process`);
    first.release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    lockDataDir(dir).release();
  });

  it('is refused while another live process holds it, naming that process', async () => {
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: other.pid, host: os.hostname() }));
      expect(() => lockDataDir(dir)).toThrow(`DATA_DIR ${dir} is in use by another server (pid ${other.pid}): stop it, or give this one another DATA_DIR`);
    } finally {
      other.kill();
    }
  });

  it('takes over a lock whose process is dead', () => {
    const pid = deadPid();
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname() }));
    const lock = lockDataDir(dir);
    expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('takes over a lock left half-written', () => {
    fs.writeFileSync(path.join(dir, LOCK_FILE), '{"pi');
    lockDataDir(dir).release();
  });

  it('takes over a lock whose pid now belongs to another process (started at another time)', () => {
    // pid 1 is alive, but it was not started at this made-up time
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: os.hostname(), started: '1' }));
    lockDataDir(dir).release();
  });

  it('never takes over a lock written on another host', () => {
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: 'elsewhere.example' }));
    expect(() => lockDataDir(dir)).toThrow(/in use by another server \(pid \d+ on elsewhere\.example\).*remove .*server\.lock/);
  });

  it('is held by an open embedded database for its life', async () => {
    const config = loadConfig({ DATA_DIR: dir, PORT: '0' });
    const db = await openDatabase(config);
    try {
      await expect(openDatabase(config)).rejects.toThrow(/is already open in this process/);
      // the refused opener left the holder's lock in place
      expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    } finally {
      await db.close();
    }
    const again = await openDatabase(config);
    await again.close();
  });
});

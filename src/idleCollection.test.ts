import http from 'node:http';
import type { AddressInfo } from 'node:net';
import vm from 'node:vm';
import { collectWhenIdle, fullCollection } from './idleCollection';

/**
 * The collection once idle (src/idleCollection.ts), on a real server over real HTTP. Its
 * timer is scheduled by hand: the test fires it when it chooses, and sees what is pending.
 */
function manualTimers() {
  const pending = new Set<() => void>();
  return {
    pending,
    set(run: () => void) {
      pending.add(run);
      return run;
    },
    clear(handle: unknown) {
      pending.delete(handle as () => void);
    },
    /** Runs what is pending now, as the timers would have. */
    fire() {
      const due = [...pending];
      pending.clear();
      for (const run of due) run();
    },
  };
}

let server: http.Server;
let base: string;
/** Requests held open until released: a request in flight for as long as the test wants. */
const held: (() => void)[] = [];
let received: () => void = () => undefined;

beforeEach(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/hold') {
      held.push(() => res.end('released'));
      received();
    } else res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  held.splice(0).forEach((release) => release());
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** A GET on a connection of its own, closed after the answer. */
function get(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${path}`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Starts a request the server holds; resolves once the server has it, with the promise of its answer (wrapped: a promise returned is awaited). */
async function holdOne(): Promise<{ answer: Promise<string> }> {
  const arrived = new Promise<void>((resolve) => (received = resolve));
  const answer = get('/hold');
  await arrived;
  return { answer };
}

/** Until `server` has seen the end of the last answer (its 'close' comes after the client has read it). */
async function settled(timers: ReturnType<typeof manualTimers>): Promise<void> {
  while (timers.pending.size === 0) await new Promise((resolve) => setImmediate(resolve));
}

describe('collection once the server is idle', () => {
  it('runs once after the requests end, and not again until another request was served', async () => {
    const timers = manualTimers();
    let collections = 0;
    const idle = collectWhenIdle(server, { collect: () => collections++, timers });
    try {
      expect(timers.pending.size).toBe(0);
      await expect(get('/')).resolves.toBe('ok');
      await settled(timers);
      timers.fire();
      expect(collections).toBe(1);
      expect(idle.runs).toBe(1);
      // idle on: nothing more is scheduled
      expect(timers.pending.size).toBe(0);
      await get('/');
      await settled(timers);
      timers.fire();
      expect(collections).toBe(2);
    } finally {
      idle.close();
    }
  });

  it('does not run while a request is in flight, and waits for the last one to end', async () => {
    const timers = manualTimers();
    let collections = 0;
    const idle = collectWhenIdle(server, { collect: () => collections++, timers });
    try {
      await get('/');
      await settled(timers);
      // a request arrives before the collection: it is cancelled
      const { answer: first } = await holdOne();
      expect(timers.pending.size).toBe(0);
      const { answer: second } = await holdOne();
      held.shift()!();
      await expect(first).resolves.toBe('released');
      // one still in flight: nothing scheduled
      await new Promise((resolve) => setImmediate(resolve));
      expect(timers.pending.size).toBe(0);
      expect(collections).toBe(0);
      held.shift()!();
      await expect(second).resolves.toBe('released');
      await settled(timers);
      timers.fire();
      expect(collections).toBe(1);
    } finally {
      idle.close();
    }
  });

  it('does nothing once closed', async () => {
    const timers = manualTimers();
    let collections = 0;
    const idle = collectWhenIdle(server, { collect: () => collections++, timers });
    await get('/');
    await settled(timers);
    idle.close();
    expect(timers.pending.size).toBe(0);
    await get('/');
    expect(timers.pending.size).toBe(0);
    expect(collections).toBe(0);
  });
});

describe('fullCollection', () => {
  it('collects garbage, and leaves no gc() to the contexts made after it', async () => {
    const gc = fullCollection();
    const ref = new WeakRef({ big: new Array(1000).fill('x') });
    // a WeakRef keeps its target until the end of the job that made it
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(ref.deref()).toBeUndefined();
    expect(vm.runInNewContext('typeof gc')).toBe('undefined');
  });
});

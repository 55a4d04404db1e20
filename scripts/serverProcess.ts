/**
 * The compiled server started as an operator starts it (`npm start`'s launcher,
 * scripts/start.sh, with its start-time memory settings), in a process of its own, so that
 * its memory and start-up time are its own and not those of the measuring script
 * (scripts/memory.ts, scripts/bench.ts).
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export const SERVER_JS = path.resolve(__dirname, '..', 'src', 'server.js');
/** What `npm start` runs once the build is current: it execs node on SERVER_JS. */
export const START_SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'start.sh');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  port: number;
  /** Seconds from spawning the process to the first answer of GET /metadata. */
  startupSeconds: number;
  /** CPU seconds (user + system) the server had used by then: the start-up's cost whatever else the machine runs. */
  startupCpuSeconds: number;
  /** Resident memory of the server process now, in MiB (Linux /proc). */
  rssMiB(): number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return Math.round(kb / 1024);
}

/** CPU seconds (user + system) of a process so far (Linux /proc). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Starts the server with `env` on a free port (unless it sets PORT); resolves at its first answer. `nodeArgs` go before the script (e.g. --cpu-prof). */
export async function startServerProcess(env: Record<string, string>, nodeArgs: string[] = []): Promise<ServerProcess> {
  const port = Number(env.PORT ?? (await freePort()));
  const t0 = performance.now();
  // SERVER_NODE_ARGS: options for the server's node only (e.g. --cpu-prof, which NODE_OPTIONS refuses)
  const args = [...nodeArgs, ...(process.env.SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  // the launcher execs node in its own place: the child's pid is the server's
  const child = spawn('sh', [START_SCRIPT, ...args], {
    env: { ...process.env, NODE: process.execPath, LOG_LEVEL: 'warn', HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = `http://127.0.0.1:${port}/fhir`;
  for (;;) {
    if (gone) throw new Error(`the server exited before answering: ${stderr.trim()}`);
    try {
      const res = await fetch(`${url}/metadata`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const startupSeconds = (performance.now() - t0) / 1000;
  const startupCpuSeconds = cpuSeconds(child.pid!);
  return {
    child,
    url,
    port,
    startupSeconds,
    startupCpuSeconds,
    rssMiB: () => rssMiB(child.pid!),
    stop: async () => {
      if (!gone) child.kill('SIGTERM');
      await exited;
    },
  };
}

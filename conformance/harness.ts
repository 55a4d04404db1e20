import crypto from 'node:crypto';
import Client from 'fhir-kit-client';
import knexFactory from 'knex';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/log';
import { RunningServer, startServer } from '../src/server';

/**
 * The server under test. With FHIR_BASE_URL set, suites run black-box against that
 * server; otherwise a server is started in-process on a fresh database: in-memory
 * PGlite, or a schema of its own in DATABASE_URL's PostgreSQL (dropped afterwards).
 */
export interface Target {
  base: string;
  client: Client;
  /** Present when the server runs in this process (white-box tests). */
  running?: RunningServer;
  close(): Promise<void>;
}

export const FHIR_JSON = 'application/fhir+json';

export async function startTarget(env: Record<string, string> = {}): Promise<Target> {
  if (process.env.FHIR_BASE_URL) {
    const base = process.env.FHIR_BASE_URL.replace(/\/+$/, '');
    return { base, client: new Client({ baseUrl: base }), close: async () => undefined };
  }
  const schema = process.env.DATABASE_URL ? `t_${crypto.randomBytes(6).toString('hex')}` : undefined;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: ':memory:',
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema! } : {}),
    DB_POOL_MAX: '10',
    ...env,
  });
  const running = await startServer({ ...config, baseUrl: 'http://placeholder' }, createLogger('silent'));
  // The port is known only once listening: the base URL follows it.
  const base = running.url;
  running.ctx.config.baseUrl = base;
  return {
    base,
    client: new Client({ baseUrl: base }),
    running,
    close: async () => {
      await running.close();
      if (schema) {
        const admin = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
        await admin.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.destroy();
      }
    },
  };
}

/** fetch with FHIR JSON defaults, for tests that look at headers and status codes. */
export async function http(base: string, path: string, init: RequestInit & { json?: unknown } = {}): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    if (!headers.has('content-type')) headers.set('content-type', FHIR_JSON);
  }
  if (!headers.has('accept')) headers.set('accept', FHIR_JSON);
  const res = await fetch(`${base}/${path.replace(/^\//, '')}`, { ...init, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/**
 * Records the SQL statements the in-process server sends (white-box tests): `counted(fn)`
 * returns fn's result and the statements run meanwhile.
 */
export function statementRecorder(target: Target): <T>(fn: () => Promise<T>) => Promise<{ result: T; sql: string[] }> {
  let statements: string[] = [];
  target.running!.ctx.db.knex.on('query', (q: { sql: string }) => statements.push(q.sql));
  return async (fn) => {
    statements = [];
    const result = await fn();
    return { result, sql: statements };
  };
}

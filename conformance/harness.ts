import crypto from 'node:crypto';
import Client from 'fhir-kit-client';
import knexFactory from 'knex';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/log';
import { RunningServer, startServer } from '../src/server';
import { createTestIssuer, TestIssuer } from './testIssuer';

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
  /** The identity provider the in-process server trusts (white-box tests): tokens for any actor. */
  issuer?: TestIssuer;
  /** The bearer token requests carry unless they set their own Authorization. */
  token?: string;
  close(): Promise<void>;
}

export const FHIR_JSON = 'application/fhir+json';

export async function startTarget(env: Record<string, string> = {}): Promise<Target> {
  if (process.env.FHIR_BASE_URL) {
    // black-box: FHIR_TOKEN is the token of a client the server lets run generic suites
    const base = process.env.FHIR_BASE_URL.replace(/\/+$/, '');
    const token = process.env.FHIR_TOKEN;
    if (token) DEFAULT_TOKENS.set(base, token);
    return { base, token, client: clientFor(base, token), close: async () => undefined };
  }
  const issuer = await createTestIssuer({ audience: TEST_AUDIENCE, testClient: true });
  const schema = process.env.DATABASE_URL ? `t_${crypto.randomBytes(6).toString('hex')}` : undefined;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: ':memory:',
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema! } : {}),
    // the partitioned run of the suite (.ci/run)
    ...(process.env.DATABASE_URL && process.env.DATABASE_PARTITIONS ? { DATABASE_PARTITIONS: process.env.DATABASE_PARTITIONS } : {}),
    // a run of the suite with Binary content in files (.ci/run): every target shares the directory, each file's name is drawn at random
    ...(process.env.CONTENT_DIR ? { CONTENT_DIR: process.env.CONTENT_DIR } : {}),
    ...(process.env.CONTENT_FILE_MIN_BYTES ? { CONTENT_FILE_MIN_BYTES: process.env.CONTENT_FILE_MIN_BYTES } : {}),
    DB_POOL_MAX: '10',
    AUTH_ISSUERS: issuer.issuersFile,
    ...env,
  });
  const running = await startServer({ ...config, baseUrl: 'http://placeholder' }, createLogger('silent'));
  // The port is known only once listening: the base URL follows it.
  const base = running.url;
  running.ctx.config.baseUrl = base;
  // generic suites run as an unrestricted test client; access-control suites mint their own actors
  const token = await issuer.mint({ sub: 'test-client', scope: 'conformance-testing' }, { ttlSeconds: 3600 });
  DEFAULT_TOKENS.set(base, token);
  return {
    base,
    client: clientFor(base, token),
    running,
    issuer,
    token,
    close: async () => {
      DEFAULT_TOKENS.delete(base);
      await issuer.cleanup();
      await running.close();
      if (schema) {
        const admin = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
        await admin.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.destroy();
      }
    },
  };
}

/** The audience of the test identity provider's tokens. */
export const TEST_AUDIENCE = 'https://fhir.test.example/fhir';

/** Default bearer token per base URL: requests that set no Authorization carry it. */
const DEFAULT_TOKENS = new Map<string, string>();

function clientFor(base: string, token: string | undefined): Client {
  return new Client({ baseUrl: base, customHeaders: token ? { Authorization: `Bearer ${token}` } : {} });
}

/**
 * A server started in development mode (its own local issuer) is called as an
 * unrestricted test client from then on, as `npm run token -- --test-client` would.
 */
export async function actAsTestClient(running: RunningServer): Promise<void> {
  if (!running.devIssuer) throw new Error('actAsTestClient needs a server in development mode (no AUTH_ISSUERS)');
  DEFAULT_TOKENS.set(running.url, await running.devIssuer.mintToken({ scope: 'conformance-testing', sub: 'test-client' }));
}

/** The Authorization header of the default token of a base URL (for raw fetch calls). */
export function authorization(base: string): Record<string, string> {
  const origin = [...DEFAULT_TOKENS.keys()].find((b) => base.startsWith(b));
  const token = origin ? DEFAULT_TOKENS.get(origin) : undefined;
  return token ? { authorization: `Bearer ${token}` } : {};
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
  // `authorization: ''` in a test means: send none
  if (!headers.has('authorization')) for (const [k, v] of Object.entries(authorization(base))) headers.set(k, v);
  else if (headers.get('authorization') === '') headers.delete('authorization');
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

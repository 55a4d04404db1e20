import path from 'node:path';

/** Typed server configuration, read once from the environment and validated up front. */
export interface Config {
  port: number;
  host: string;
  /** Public base URL of the FHIR endpoint, without trailing slash (used in Location, links, fullUrl). */
  baseUrl: string;
  /** PostgreSQL connection string; when absent the embedded PGlite database under dataDir is used. */
  databaseUrl: string | undefined;
  /** PostgreSQL schema to use (tests isolate themselves with one schema each). */
  databaseSchema: string | undefined;
  dataDir: string;
  /** Where raw Binary uploads are spooled before they go into the database (private, emptied at start). */
  spoolDir: string;
  /** Most bytes spooled at once by all uploads together; an upload past it is answered 503 with Retry-After. */
  spoolMaxBytes: number;
  /** How long a page link (next/previous) stays valid, in seconds. */
  pageTokenTtlSeconds: number;
  /** Embedded database only: keep it in memory (tests). */
  embeddedInMemory: boolean;
  dbPoolMax: number;
  binaryMaxBytes: number;
  jsonMaxBytes: number;
  defaultPageSize: number;
  maxPageSize: number;
  logLevel: string;
  shutdownTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** Sizes accept a plain byte count or a suffix: 512k, 50m, 1g (binary multiples). */
function byteSize(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(raw.trim());
  if (!m) throw new ConfigError(`${name} must be a size such as 52428800, 512k or 50m, got "${raw}"`);
  const unit = (m[2] ?? '').charAt(0).toLowerCase();
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  const value = Number(m[1]) * factor;
  if (value < 1) throw new ConfigError(`${name} must be at least 1 byte`);
  return value;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, 'PORT', 8080, 0, 65535);
  // loopback unless told otherwise: exposing the server is a deployment decision (HOST=0.0.0.0 in a container)
  const host = env.HOST || '127.0.0.1';

  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql://, got "${databaseUrl.replace(/:[^:@/]*@/, ':***@')}"`);
  }
  const databaseSchema = env.DATABASE_SCHEMA || undefined;
  if (databaseSchema && !/^[a-z_][a-z0-9_]{0,62}$/.test(databaseSchema)) {
    throw new ConfigError(`DATABASE_SCHEMA must be a lower-case SQL identifier, got "${databaseSchema}"`);
  }

  let baseUrl = env.BASE_URL || `http://localhost:${port || 8080}/fhir`;
  try {
    const u = new URL(baseUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
  } catch {
    throw new ConfigError(`BASE_URL must be an absolute http(s) URL, got "${baseUrl}"`);
  }
  baseUrl = baseUrl.replace(/\/+$/, '');

  const logLevel = (env.LOG_LEVEL || 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  const defaultPageSize = integer(env, 'DEFAULT_PAGE_SIZE', 20, 1, 10000);
  const maxPageSize = integer(env, 'MAX_PAGE_SIZE', 1000, 1, 10000);
  if (defaultPageSize > maxPageSize) throw new ConfigError('DEFAULT_PAGE_SIZE must not exceed MAX_PAGE_SIZE');

  const dataDir = path.resolve(env.DATA_DIR || './data');
  const binaryMaxBytes = byteSize(env, 'BINARY_MAX_BYTES', 50 * 1024 * 1024);
  // two largest uploads at once by default; never less than one
  const spoolMaxBytes = byteSize(env, 'SPOOL_MAX_BYTES', Math.max(2 * binaryMaxBytes, 256 * 1024 * 1024));
  if (spoolMaxBytes < binaryMaxBytes) throw new ConfigError('SPOOL_MAX_BYTES must be at least BINARY_MAX_BYTES');
  // with DATA_DIR=:memory: (tests) only the spool is on disk, under ./data as without DATA_DIR
  const spoolDir = env.SPOOL_DIR ? path.resolve(env.SPOOL_DIR) : path.join(env.DATA_DIR === ':memory:' ? path.resolve('./data') : dataDir, 'spool');

  return {
    port,
    host,
    baseUrl,
    databaseUrl,
    databaseSchema,
    dataDir,
    spoolDir,
    spoolMaxBytes,
    pageTokenTtlSeconds: integer(env, 'PAGE_TOKEN_TTL', 3600, 1, 7 * 24 * 3600),
    embeddedInMemory: env.DATA_DIR === ':memory:',
    dbPoolMax: integer(env, 'DB_POOL_MAX', 10, 1, 1000),
    binaryMaxBytes,
    jsonMaxBytes: byteSize(env, 'JSON_MAX_BYTES', 64 * 1024 * 1024),
    defaultPageSize,
    maxPageSize,
    logLevel,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 0, 600000),
  };
}

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
  /** Embedded database only: keep it in memory (tests). */
  embeddedInMemory: boolean;
  dbPoolMax: number;
  binaryMaxBytes: number;
  jsonMaxBytes: number;
  /** JSON bodies: deepest nesting of arrays and objects, values in all, elements of one array (docs/decisions/005-request-limits.md). */
  jsonMaxDepth: number;
  jsonMaxNodes: number;
  jsonMaxArrayLength: number;
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
  const host = env.HOST || '0.0.0.0';

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

  return {
    port,
    host,
    baseUrl,
    databaseUrl,
    databaseSchema,
    dataDir: path.resolve(env.DATA_DIR || './data'),
    embeddedInMemory: env.DATA_DIR === ':memory:',
    dbPoolMax: integer(env, 'DB_POOL_MAX', 10, 1, 1000),
    binaryMaxBytes: byteSize(env, 'BINARY_MAX_BYTES', 50 * 1024 * 1024),
    jsonMaxBytes: byteSize(env, 'JSON_MAX_BYTES', 32 * 1024 * 1024),
    // past a few thousand levels, the recursive walkers of the server overflow the stack
    jsonMaxDepth: integer(env, 'JSON_MAX_DEPTH', 100, 8, 1000),
    jsonMaxNodes: integer(env, 'JSON_MAX_NODES', 100_000, 1000, 100_000_000),
    jsonMaxArrayLength: integer(env, 'JSON_MAX_ARRAY_LENGTH', 10_000, 100, 100_000_000),
    defaultPageSize,
    maxPageSize,
    logLevel,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 0, 600000),
  };
}

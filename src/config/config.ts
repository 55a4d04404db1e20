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
  /**
   * DATABASE_PARTITIONS: PostgreSQL only; the patient tables are hash-partitioned by
   * compartment in this many parts at start-up (src/store/partitioning.ts). Undefined:
   * tables are left as they are. The embedded database ignores it (one process, one disk).
   */
  databasePartitions: number | undefined;
  /**
   * How often, in ms, a server on PostgreSQL does autovacuum's work for the tables autovacuum
   * does not serve (0: never; docs/decisions/037-embedded-upkeep.md, amendment).
   */
  databaseUpkeepIntervalMs: number;
  dataDir: string;
  /** Where raw Binary uploads are spooled before they go into the database (private, emptied at start). */
  spoolDir: string;
  /**
   * Where Binary content of `contentFileMinBytes` or more is kept as files
   * (docs/decisions/036-binary-content-files.md); undefined: all content in the database.
   */
  contentDir?: string;
  contentFileMinBytes: number;
  /** Most bytes spooled at once by all uploads together; an upload past it is answered 503 with Retry-After. */
  spoolMaxBytes: number;
  /** How long a page link (next/previous) stays valid, in seconds. */
  pageTokenTtlSeconds: number;
  /** Seconds a completed bulk export and its files are kept (docs/decisions/020-bulk-data.md). */
  bulkExportTtlSeconds: number;
  /** Embedded database only: keep it in memory (tests). */
  embeddedInMemory: boolean;
  dbPoolMax: number;
  /**
   * Processes serving the port (node:cluster), PostgreSQL only: the embedded database is
   * one process's files (docs/decisions/022-workers.md).
   */
  workers: number;
  binaryMaxBytes: number;
  /** Largest Binary a message may carry as an attachment (docs/decisions/016-messaging.md). */
  messageAttachmentMaxBytes: number;
  jsonMaxBytes: number;
  /** JSON bodies: deepest nesting of arrays and objects, values in all, elements of one array (docs/decisions/005-request-limits.md). */
  jsonMaxDepth: number;
  jsonMaxNodes: number;
  jsonMaxArrayLength: number;
  defaultPageSize: number;
  maxPageSize: number;
  logLevel: string;
  shutdownTimeoutMs: number;

  // Authentication and transport (docs/decisions/007-authentication.md).
  /** AUTH_ISSUERS: the trusted issuers file; absent = the development issuer (refused in production). */
  authIssuersFile: string | undefined;
  /** NODE_ENV as given ('' when unset). */
  nodeEnv: string;
  /** NODE_ENV=production: development keys and issuers are refused. */
  production: boolean;
  /** HTTPS (TLS_CERT, TLS_KEY) and, with TLS_CLIENT_CA, client certificates verified against that CA bundle. */
  tls: { cert: string; key: string; clientCa: string | undefined } | undefined;
  /** Clock skew tolerated on a token's exp, nbf and iat, in seconds. */
  clockSkewSeconds: number;
  /** Origins allowed to call from a browser (CORS_ORIGINS, comma-separated exact origins). */
  corsOrigins: string[];
  /** How long a professional's declared access consent lasts when it states no period, in days. */
  consentDefaultDays: number;
  /** Days an AuditEvent is kept before `npm run purge-audit` deletes it (docs/decisions/009-audit.md). */
  auditRetentionDays: number;
  /** Days a closed (archived) record is kept before `npm run purge` deletes it (docs/decisions/017-record-lifecycle.md). */
  recordRetentionDays: number;
  /** Longest request target (path and query) accepted; longer is refused with 414 before any work. */
  maxUrlLength: number;
  /** Search: name=value pairs per query (URL and POST _search form together). */
  searchMaxParameters: number;
  /** Search: values per query, each value of an OR list counting one. */
  searchMaxValues: number;
  /** Search: links in one chain (`subject.organization.name` has 2). */
  searchMaxChainDepth: number;
  /** Search: `_has` nested in `_has`. */
  searchMaxHasDepth: number;
  /** Search: sub-queries that the chains of one query expand into, one per candidate target type of each link. */
  searchMaxChainTargets: number;
  /** `_elements`: element names per request. */
  elementsMaxNames: number;
  /** Entries of a transaction or batch Bundle (default lower on the embedded database, which a transaction holds whole). */
  bundleMaxEntries: number;
  /** PostgreSQL statement_timeout of every pooled connection, in ms (0: none). The embedded database ignores it. */
  dbStatementTimeoutMs: number;

  // Subscriptions (docs/decisions/010-subscriptions.md).
  /** SUBSCRIPTIONS_DISPATCHER: `in-process` (default) delivers from this process; `off` leaves it to `npm run dispatcher`. */
  subscriptionsDispatcher: 'in-process' | 'off';
  /** How often the dispatcher looks for changes and due deliveries, in ms. */
  subscriptionPollMs: number;
  /** Longest wait for a subscriber's endpoint to answer, in ms. */
  subscriptionTimeoutMs: number;
  /** Failed attempts of one notification after which the Subscription is set to `error`. */
  subscriptionMaxAttempts: number;
  /** First retry delay, in ms; doubled on each further failure (capped at one hour). */
  subscriptionBackoffMs: number;
  /** Whether http:// endpoints are accepted (never in production unless SUBSCRIPTION_ALLOW_HTTP=true). */
  subscriptionAllowHttp: boolean;
}

/** Defaults of the query limits (docs/decisions/005-request-limits.md says why each). */
export const QUERY_LIMIT_DEFAULTS = {
  maxUrlLength: 8192,
  searchMaxParameters: 30,
  searchMaxValues: 1000,
  searchMaxChainDepth: 3,
  searchMaxHasDepth: 2,
  searchMaxChainTargets: 100,
  elementsMaxNames: 100,
  dbStatementTimeoutMs: 30000,
} as const;

/** A transaction holds its connection to the end: the embedded database has only one. */
export const BUNDLE_MAX_ENTRIES_DEFAULT = { postgres: 1000, embedded: 100 } as const;

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

/** Authentication and transport settings (docs/decisions/007-authentication.md). */
function accessSettings(env: Env) {
  const nodeEnv = env.NODE_ENV ?? '';
  const production = nodeEnv === 'production';
  const authIssuersFile = env.AUTH_ISSUERS ? path.resolve(env.AUTH_ISSUERS) : undefined;
  if (production && !authIssuersFile) {
    throw new ConfigError('NODE_ENV=production requires AUTH_ISSUERS: the development token issuer is not trusted in production');
  }

  const cert = env.TLS_CERT || undefined;
  const key = env.TLS_KEY || undefined;
  const clientCa = env.TLS_CLIENT_CA || undefined;
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError('TLS_CERT and TLS_KEY go together: set both for HTTPS, or neither');
  if (clientCa && !cert) throw new ConfigError('TLS_CLIENT_CA needs TLS_CERT and TLS_KEY: client certificates are only asked for over HTTPS');
  const tls = cert && key ? { cert: path.resolve(cert), key: path.resolve(key), clientCa: clientCa ? path.resolve(clientCa) : undefined } : undefined;

  const corsOrigins = (env.CORS_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of corsOrigins) {
    // Requests carry credentials (Authorization): browsers refuse '*' with them, and a
    // wildcard would let any site drive a user's session.
    if (origin === '*') throw new ConfigError('CORS_ORIGINS may not be "*": list the allowed origins, e.g. https://app.example.fr');
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.origin !== origin) {
      throw new ConfigError(`CORS_ORIGINS entries must be origins such as https://app.example.fr (scheme, host, optional port; no path or trailing slash), got "${origin}"`);
    }
  }

  return {
    authIssuersFile,
    nodeEnv,
    production,
    tls,
    clockSkewSeconds: integer(env, 'AUTH_CLOCK_SKEW_SECONDS', 30, 0, 300),
    corsOrigins,
    consentDefaultDays: integer(env, 'CONSENT_DEFAULT_DAYS', 365, 1, 3650),
    // ten years by default: a patient may ask who read their record long after the fact
    auditRetentionDays: integer(env, 'AUDIT_RETENTION_DAYS', 3650, 1, 36500),
    // ten years from the closure (CSP R1111-36)
    recordRetentionDays: integer(env, 'RECORD_RETENTION_DAYS', 3650, 1, 36500),
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Limits on what one request may make the server do. Upper bounds keep a typo from
 * disabling a limit; MAX_URL_LENGTH stays under Node's own 16 KB header limit, past which
 * Node answers 431 before the application sees the request.
 */
function queryLimits(env: Env, embedded: boolean): Pick<Config, keyof typeof QUERY_LIMIT_DEFAULTS | 'bundleMaxEntries'> {
  const d = QUERY_LIMIT_DEFAULTS;
  return {
    maxUrlLength: integer(env, 'MAX_URL_LENGTH', d.maxUrlLength, 256, 16000),
    searchMaxParameters: integer(env, 'SEARCH_MAX_PARAMETERS', d.searchMaxParameters, 1, 1000),
    searchMaxValues: integer(env, 'SEARCH_MAX_VALUES', d.searchMaxValues, 1, 100000),
    searchMaxChainDepth: integer(env, 'SEARCH_MAX_CHAIN_DEPTH', d.searchMaxChainDepth, 0, 10),
    searchMaxHasDepth: integer(env, 'SEARCH_MAX_HAS_DEPTH', d.searchMaxHasDepth, 0, 10),
    searchMaxChainTargets: integer(env, 'SEARCH_MAX_CHAIN_TARGETS', d.searchMaxChainTargets, 1, 10000),
    elementsMaxNames: integer(env, 'ELEMENTS_MAX_NAMES', d.elementsMaxNames, 1, 10000),
    bundleMaxEntries: integer(env, 'BUNDLE_MAX_ENTRIES', BUNDLE_MAX_ENTRIES_DEFAULT[embedded ? 'embedded' : 'postgres'], 1, 1000000),
    dbStatementTimeoutMs: integer(env, 'DB_STATEMENT_TIMEOUT_MS', d.dbStatementTimeoutMs, 0, 86400000),
  };
}

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

  const databasePartitions = env.DATABASE_PARTITIONS ? integer(env, 'DATABASE_PARTITIONS', 0, 2, 1024) : undefined;

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

  // files by default only where the database is one machine's own files (the embedded database on disk)
  const contentDir = env.CONTENT_DIR ? path.resolve(env.CONTENT_DIR) : !databaseUrl && env.DATA_DIR !== ':memory:' ? path.join(dataDir, 'content') : undefined;

  return {
    port,
    host,
    baseUrl,
    databaseUrl,
    databaseSchema,
    databasePartitions,
    databaseUpkeepIntervalMs: integer(env, 'DATABASE_UPKEEP_INTERVAL_MS', 5000, 0, 86400000),
    dataDir,
    spoolDir,
    contentDir,
    contentFileMinBytes: byteSize(env, 'CONTENT_FILE_MIN_BYTES', 1024 * 1024),
    spoolMaxBytes,
    pageTokenTtlSeconds: integer(env, 'PAGE_TOKEN_TTL', 3600, 1, 7 * 24 * 3600),
    bulkExportTtlSeconds: integer(env, 'BULK_EXPORT_TTL', 3600, 1, 30 * 24 * 3600),
    embeddedInMemory: env.DATA_DIR === ':memory:',
    dbPoolMax: integer(env, 'DB_POOL_MAX', 10, 1, 1000),
    workers: workerCount(env, databaseUrl),
    binaryMaxBytes,
    messageAttachmentMaxBytes: byteSize(env, 'MESSAGE_ATTACHMENT_MAX_BYTES', 10 * 1024 * 1024),
    jsonMaxBytes: byteSize(env, 'JSON_MAX_BYTES', 32 * 1024 * 1024),
    // past a few thousand levels, the recursive walkers of the server overflow the stack
    jsonMaxDepth: integer(env, 'JSON_MAX_DEPTH', 100, 8, 1000),
    jsonMaxNodes: integer(env, 'JSON_MAX_NODES', 100_000, 1000, 100_000_000),
    jsonMaxArrayLength: integer(env, 'JSON_MAX_ARRAY_LENGTH', 10_000, 100, 100_000_000),
    defaultPageSize,
    maxPageSize,
    logLevel,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 0, 600000),
    ...accessSettings(env),
    ...queryLimits(env, !databaseUrl),
    ...subscriptionSettings(env),
  };
}

/** Subscription delivery settings (docs/decisions/010-subscriptions.md). */
/** WORKERS: 1 by default; more only with PostgreSQL (docs/decisions/022-workers.md). */
function workerCount(env: Env, databaseUrl: string | undefined): number {
  const workers = integer(env, 'WORKERS', 1, 1, 256);
  if (workers > 1 && !databaseUrl) {
    throw new ConfigError(
      `WORKERS=${workers} needs PostgreSQL (DATABASE_URL): the embedded database lives inside one process, which holds DATA_DIR for its life. Unset WORKERS, or set DATABASE_URL`,
    );
  }
  return workers;
}

function subscriptionSettings(env: Env): Pick<Config, 'subscriptionsDispatcher' | 'subscriptionPollMs' | 'subscriptionTimeoutMs' | 'subscriptionMaxAttempts' | 'subscriptionBackoffMs' | 'subscriptionAllowHttp'> {
  const mode = env.SUBSCRIPTIONS_DISPATCHER || 'in-process';
  if (mode !== 'in-process' && mode !== 'off') throw new ConfigError(`SUBSCRIPTIONS_DISPATCHER must be in-process or off, got "${mode}"`);
  const allowHttp = env.SUBSCRIPTION_ALLOW_HTTP;
  if (allowHttp !== undefined && allowHttp !== '' && allowHttp !== 'true' && allowHttp !== 'false') throw new ConfigError(`SUBSCRIPTION_ALLOW_HTTP must be true or false, got "${allowHttp}"`);
  return {
    subscriptionsDispatcher: mode,
    subscriptionPollMs: integer(env, 'SUBSCRIPTION_POLL_MS', 1000, 10, 3600000),
    subscriptionTimeoutMs: integer(env, 'SUBSCRIPTION_TIMEOUT_MS', 10000, 100, 600000),
    subscriptionMaxAttempts: integer(env, 'SUBSCRIPTION_MAX_ATTEMPTS', 5, 1, 1000),
    subscriptionBackoffMs: integer(env, 'SUBSCRIPTION_BACKOFF_MS', 2000, 1, 3600000),
    subscriptionAllowHttp: allowHttp ? allowHttp === 'true' : env.NODE_ENV !== 'production',
  };
}

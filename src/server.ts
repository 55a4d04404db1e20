import cluster from 'node:cluster';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { Config, ConfigError, loadConfig } from './config/config';
import { createApp } from './http/app';
import path from 'node:path';
import { trustedIssuers } from './access/authn/trustedIssuers';
import { loadHabilitationMatrix } from './access/policy/habilitationMatrix';
import { matrixView } from './access/policy/matrixView';
import type { DevIssuer } from './access/authn/devIssuer';
import type { InteractionContext } from './interactions/types';
import { createLogger } from './log';
import { startupFailureMessage } from './startupFailure';
import { ensureServerDevice } from './audit/serverDevice';
import { followConformanceResources, syncConformanceResources } from './interactions/conformanceResources';
import { inTransaction } from './interactions/unitOfWork';
import { defaultRegistryInstance, findProfilesDir } from './registry/registry';
import { createServerValidator } from './validation/forServer';
import { openDatabase } from './store/database';
import { pageTokenSecret } from './store/resources';
import { INTERNAL_ACCESS, Session } from './store/session';
import { closeUploadSpool, uploadSpool } from './http/uploadSpool';
import { keepNewFilesPrivate, makePrivate } from './privateFiles';
import { Dispatcher, startDispatcher } from './subscriptions/dispatcher';
import { stopExports, sweepExpiredExports } from './operations/exportJob';
import { dispatchesHere, runPrimary } from './workers';
import { scheduleUpkeep } from './upkeepSchedule';
import { answerUnparseableRequests } from './http/clientError';

export interface RunningServer {
  url: string;
  ctx: InteractionContext;
  server: http.Server | https.Server;
  close(): Promise<void>;
  /** Development mode: the local issuer tokens are minted with (npm run token). */
  devIssuer?: DevIssuer;
  /** The subscription dispatcher of this process (SUBSCRIPTIONS_DISPATCHER=in-process). */
  dispatcher?: Dispatcher;
}

/**
 * Makes Object.prototype read-only: the last line of defence against prototype pollution
 * (a `__proto__` or `constructor.prototype` member that some merge or copy of client data
 * would write through). Bodies are refused before that (src/json/jsonReader.ts); this keeps
 * a path nobody thought of from changing every object of the process. Called before any
 * request is served; later calls do nothing.
 */
export function freezeObjectPrototype(): void {
  Object.freeze(Object.prototype);
}

/** What only a caller in the same process can choose: never a configuration setting. */
export interface ServerOptions {
  /**
   * `false` serves without the audit trail and the patient's notifications, to measure what
   * they cost (scripts/bench-audit.ts). Deliberately not reachable from the configuration or
   * the environment, so that no deployment can turn the trail off (docs/decisions/009-audit.md).
   */
  audit?: boolean;
  /** `false`: this process does not run the subscription dispatcher (another worker of the cluster does). */
  dispatcher?: boolean;
}

/** Opens the database (applying migrations), builds the app and listens. */
export async function startServer(config: Config, log: Logger = createLogger(config.logLevel), options: ServerOptions = {}): Promise<RunningServer> {
  freezeObjectPrototype();
  // unreadable key or certificate files stop the server before the database is opened
  const httpsOptions = config.tls ? tlsOptions(config.tls) : undefined;
  const registry = defaultRegistryInstance();
  // before anything is written: the database's files, spooled uploads
  keepNewFilesPrivate();
  if (!config.databaseUrl && !config.embeddedInMemory) makePrivate(config.dataDir, config.contentDir);
  // emptied of what a crashed process left
  uploadSpool(config);
  const db = await openDatabase(config).catch((e) => {
    closeUploadSpool(config);
    throw e;
  });
  // PGlite writes the files of a new database with modes of its own (0666), whatever the umask:
  // the directory (0700) already shuts others out, and the files are narrowed once created
  if (!config.databaseUrl && !config.embeddedInMemory) makePrivate(config.dataDir, config.contentDir);
  const secret = await pageTokenSecret(new Session(db.knex, INTERNAL_ACCESS));
  // a malformed matrix or issuers file stops the server here, with the message naming the defect
  const matrix = loadHabilitationMatrix(path.join(findProfilesDir(), 'habilitation-matrix.json'));
  const { issuers, devIssuer } = await trustedIssuers(config);
  const validator = createServerValidator();
  const ctx: InteractionContext = {
    config,
    registry,
    db,
    log,
    pageTokenSecret: secret,
    auth: {
      issuers,
      policy: {
        matrix: matrixView(matrix),
        consentDefaultDays: config.consentDefaultDays,
        messaging: { baseUrl: () => config.baseUrl, attachmentMaxBytes: config.messageAttachmentMaxBytes },
        searchParamType: (resourceType, code) => registry.searchParams(resourceType).get(code)?.type,
      },
    },
    validator,
    expandValueSet: (url) => validator.valueSetCodes(url),
    ...(options.audit === false ? { withoutAudit: true as const } : {}),
  };
  const conformanceVersion = await inTransaction(ctx, INTERNAL_ACCESS, (session) => syncConformanceResources(ctx, session, findProfilesDir()));
  // other processes sharing the database may write conformance resources: this one follows
  const conformance = followConformanceResources(ctx, conformanceVersion);
  // the sender of the patient's notifications (docs/decisions/009-audit.md)
  await ensureServerDevice(ctx);
  const app = createApp(ctx);
  const server = httpsOptions ? https.createServer(httpsOptions, app) : http.createServer(app);
  server.keepAliveTimeout = 65000;
  answerUnparseableRequests(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  }).catch(async (e) => {
    // the port is taken (or not ours): what was opened is closed, the data directory's lock released
    await conformance?.close();
    await db.close();
    closeUploadSpool(config);
    throw e;
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // notifications are sent from here unless a dispatcher process of its own does it (npm run dispatcher)
  const dispatcher = config.subscriptionsDispatcher === 'in-process' && options.dispatcher !== false ? startDispatcher(ctx) : undefined;
  // expired bulk exports are deleted by every server, whichever ran them (docs/decisions/020-bulk-data.md)
  const exportSweep = setInterval(() => sweepExpiredExports(ctx).catch((e) => ctx.log.warn({ err: e }, 'bulk export sweep failed')), 60_000);
  exportSweep.unref();
  // autovacuum's work where nothing else does it, and on the embedded database the memory a load
  // left given back once the requests stop (docs/decisions/037-embedded-upkeep.md, 027-embedded-memory.md)
  const upkeep = scheduleUpkeep(server, db, config.databaseUpkeepIntervalMs, log);
  let closing: Promise<void> | undefined;
  const close = () => {
    clearInterval(exportSweep);
    // Stop accepting, let in-flight requests finish (bounded), then close the pool.
    closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
    })
      .then(() => dispatcher?.close())
      .then(() => stopExports(db))
      .then(() => conformance?.close())
      // an upkeep pass in progress ends before the database closes (docs/decisions/037-embedded-upkeep.md)
      .then(() => upkeep.close())
      .then(() => db.close())
      .finally(() => closeUploadSpool(config));
    return closing;
  };
  return { url: `${httpsOptions ? 'https' : 'http'}://localhost:${port}/fhir`, ctx, server, close, devIssuer, dispatcher };
}

/**
 * HTTPS, and with a client CA, client certificates (docs/decisions/007-authentication.md).
 * The certificate is asked for, not required: an application with a token and no
 * certificate still connects. Whether a certificate that was sent verified against the CA
 * is then judged per request (a 401 when it did not, never an anonymous request).
 */
export function tlsOptions(settings: NonNullable<Config['tls']>): https.ServerOptions {
  const read = (file: string, variable: string) => {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new ConfigError(`${variable}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const options: https.ServerOptions = {
    cert: read(settings.cert, 'TLS_CERT'),
    key: read(settings.key, 'TLS_KEY'),
    minVersion: 'TLSv1.2',
    ...(settings.clientCa ? { ca: read(settings.clientCa, 'TLS_CLIENT_CA'), requestCert: true, rejectUnauthorized: false } : {}),
  };
  try {
    // a key that is not the certificate's, or a file that is not PEM, is found now rather than at the first connection
    tls.createSecureContext(options);
  } catch (e) {
    throw new ConfigError(`TLS_CERT, TLS_KEY, TLS_CLIENT_CA: not a usable certificate, key and CA bundle (${((e as Error).message ?? '').replace(/[^\w :.,-]/g, '').slice(0, 120)})`);
  }
  return options;
}

/** The settings the token script must share with this server (its key under DATA_DIR, its audience from BASE_URL or PORT), as a command prefix. */
export function tokenCommandPrefix(env: NodeJS.ProcessEnv): string {
  const parts: string[] = [];
  if (env.BASE_URL) parts.push(`BASE_URL=${env.BASE_URL}`);
  else if (env.PORT) parts.push(`PORT=${env.PORT}`);
  if (env.DATA_DIR) parts.push(`DATA_DIR=${env.DATA_DIR}`);
  return parts.map((p) => `${p} `).join('');
}

async function main(): Promise<void> {
  let config: Config | undefined;
  let running: RunningServer;
  let log: Logger;
  try {
    config = loadConfig();
    if (config.tls) tlsOptions(config.tls);
    log = createLogger(config.logLevel);
    if (config.workers > 1 && cluster.isPrimary) {
      // WORKERS=n: this process forks the ones that serve (docs/decisions/022-workers.md)
      await runPrimary(config, log);
      return;
    }
    running = await startServer(config, log, { dispatcher: dispatchesHere() });
  } catch (e) {
    // one line an operator can act on; the stack only when asked for (LOG_LEVEL=debug)
    console.error(startupFailureMessage(e, config));
    if (config && (config.logLevel === 'debug' || config.logLevel === 'trace')) console.error(e);
    process.exit(e instanceof ConfigError ? 2 : 1);
  }
  // before the line that says it listens: a supervisor may signal as soon as it reads it
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    running.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (e) => {
        log.error({ err: e }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log.info({ url: running.url, database: running.ctx.db.kind, dataDir: config.databaseUrl ? undefined : config.dataDir }, 'FHIR server listening');
  if (running.devIssuer) {
    log.warn(
      { issuer: running.devIssuer.trusted.issuer, keyFile: running.devIssuer.keyFile },
      `development mode: every request needs a bearer token from the local issuer. Mint one with: ${tokenCommandPrefix(process.env)}npm run token -- --fhir-user Practitioner/{id} --scope "user/*.cruds" | --admin | --test-client (see README)`,
    );
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(startupFailureMessage(e, undefined));
    process.exit(1);
  });
}


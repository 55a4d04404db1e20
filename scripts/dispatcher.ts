/**
 * The subscription dispatcher as a process of its own (docs/decisions/010-subscriptions.md),
 * for servers started with SUBSCRIPTIONS_DISPATCHER=off. It shares the PostgreSQL database
 * of the servers (DATABASE_URL, DATABASE_SCHEMA); several may run at once. The embedded
 * database belongs to one process: there, the server dispatches in-process.
 *
 *   SUBSCRIPTIONS_DISPATCHER=off npm start   # the API
 *   npm run dispatcher                        # the notifications
 */
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config/config';
import { loadHabilitationMatrix } from '../src/access/policy/habilitationMatrix';
import { matrixView } from '../src/access/policy/matrixView';
import { followConformanceResources, reloadConformanceResources } from '../src/interactions/conformanceResources';
import type { InteractionContext } from '../src/interactions/types';
import { createLogger } from '../src/log';
import { defaultRegistryInstance, findProfilesDir } from '../src/registry/registry';
import { openDatabase } from '../src/store/database';
import { pageTokenSecret } from '../src/store/resources';
import { INTERNAL_ACCESS, Session } from '../src/store/session';
import { startDispatcher } from '../src/subscriptions/dispatcher';
import { createServerValidator } from '../src/validation/forServer';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  if (!config.databaseUrl) throw new ConfigError('npm run dispatcher needs DATABASE_URL: the embedded database is opened by the server alone, which then dispatches in-process');
  const log = createLogger(config.logLevel);
  const db = await openDatabase(config);
  const matrix = loadHabilitationMatrix(path.join(findProfilesDir(), 'habilitation-matrix.json'));
  const validator = createServerValidator();
  const ctx: InteractionContext = {
    config,
    registry: defaultRegistryInstance(),
    db,
    log,
    pageTokenSecret: await pageTokenSecret(new Session(db.knex, INTERNAL_ACCESS)),
    // no request reaches this process: no issuer is trusted, only the policy is used (the owners' access)
    auth: { issuers: [], policy: { matrix: matrixView(matrix), consentDefaultDays: config.consentDefaultDays } },
    validator,
    expandValueSet: (url) => validator.valueSetCodes(url),
  };
  await reloadConformanceResources(ctx);
  const conformance = followConformanceResources(ctx, 0);
  const dispatcher = startDispatcher(ctx, { keepProcessAlive: true });
  log.info({ pollMs: config.subscriptionPollMs }, 'subscription dispatcher running');
  const stop = (signal: string) => {
    log.info({ signal }, 'subscription dispatcher stopping');
    dispatcher
      .close()
      .then(() => conformance?.close())
      .then(() => db.close())
      .then(
        () => process.exit(0),
        (e) => {
          log.error({ err: e }, 'error during shutdown');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e) => {
  console.error(e instanceof ConfigError ? `Configuration error: ${e.message}` : e);
  process.exit(e instanceof ConfigError ? 2 : 1);
});

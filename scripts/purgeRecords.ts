/**
 * Retention of closed records (docs/decisions/017-record-lifecycle.md): deletes every
 * archived record whose retention period (RECORD_RETENTION_DAYS from its closure, ten years
 * by default) has passed, one record per transaction, by batches, printing progress.
 * Idempotent and resumable: run again, it finds what is left.
 *
 *   npm run purge -- [--batch 100]
 *
 * The database is the server's (DATABASE_URL, or the embedded one in DATA_DIR).
 */
import { argumentsOrExit, configOrExit } from './commandLine';
import { purgeArchives } from '../src/dmp/recordLifecycle';
import type { InteractionContext } from '../src/interactions/types';
import { createLogger } from '../src/log';
import { defaultRegistryInstance } from '../src/registry/registry';
import { openDatabase } from '../src/store/database';

export function parseArgs(argv: string[]): { batch: number } {
  let batch = 100;
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--batch' && value !== undefined && /^\d+$/.test(value) && Number(value) >= 1) (batch = Number(value)), i++;
    else throw new Error(`unknown or incomplete argument "${argv[i]}": usage purge [--batch 100]`);
  }
  return { batch };
}

async function main(): Promise<void> {
  const config = configOrExit();
  const args = argumentsOrExit(parseArgs);
  const db = await openDatabase(config);
  try {
    const ctx = { config, registry: defaultRegistryInstance(), db, log: createLogger('silent'), pageTokenSecret: '' } as InteractionContext;
    await purgeArchives(ctx, args);
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

/**
 * Retention of the audit trail: deletes the AuditEvents recorded before a period
 * (docs/decisions/009-audit.md), by batches, each its own transaction, printing progress.
 * Stopped midway, it resumes where it was when run again.
 *
 *   npm run purge-audit -- [--older-than 3650d] [--batch 1000]
 *
 * The default period is AUDIT_RETENTION_DAYS (ten years). The database is the server's
 * (DATABASE_URL, or the embedded one in DATA_DIR).
 */
import type { Knex } from 'knex';
import { argumentsOrExit, configOrExit } from './commandLine';
import { countAuditBefore, purgeAuditBatch } from '../src/store/auditRetention';
import { openDatabase } from '../src/store/database';

export interface PurgeOptions {
  olderThanDays: number;
  batch: number;
  now?: Date;
  print?: (line: string) => void;
}

/** `3650d` or `3650`: a number of days. */
export function parseDays(raw: string): number {
  const m = /^(\d+)d?$/.exec(raw.trim());
  if (!m || Number(m[1]) < 1) throw new Error(`--older-than takes a number of days such as 3650d, got "${raw}"`);
  return Number(m[1]);
}

export function parseArgs(argv: string[], defaultDays: number): { olderThanDays: number; batch: number } {
  let olderThanDays = defaultDays;
  let batch = 1000;
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--older-than' && value !== undefined) (olderThanDays = parseDays(value)), i++;
    else if (argv[i] === '--batch' && value !== undefined && /^\d+$/.test(value) && Number(value) >= 1) (batch = Number(value)), i++;
    else throw new Error(`unknown or incomplete argument "${argv[i]}": usage purge-audit [--older-than 3650d] [--batch 1000]`);
  }
  return { olderThanDays, batch };
}

/** Purges batch after batch until none is left; the number of events deleted. */
export async function purgeAudit(knex: Knex, o: PurgeOptions): Promise<number> {
  const print = o.print ?? ((line: string) => console.log(line));
  const before = new Date((o.now ?? new Date()).getTime() - o.olderThanDays * 86_400_000).toISOString();
  const total = await countAuditBefore(knex, before);
  print(`purge-audit: ${total} AuditEvent(s) recorded before ${before}, batches of ${o.batch}`);
  let done = 0;
  for (;;) {
    const n = await purgeAuditBatch(knex, before, o.batch);
    if (n === 0) break;
    done += n;
    print(`purge-audit: ${done}/${total} deleted`);
  }
  print(`purge-audit: done, ${done} deleted`);
  return done;
}

async function main(): Promise<void> {
  const config = configOrExit();
  const args = argumentsOrExit((argv) => parseArgs(argv, config.auditRetentionDays));
  const db = await openDatabase(config);
  try {
    await purgeAudit(db.knex, args);
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

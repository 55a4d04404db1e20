/**
 * The daily digest of the patients who chose it (docs/decisions/009-audit.md): for each
 * record whose notification preference is `daily-digest`, one Communication summarising
 * the day's accesses by professionals that every reader of it (the patient, a legal
 * representative) is shown; none when there is no such access. Idempotent per day: the
 * digest of a patient's day has a fixed id, and a day already summarised is left as it is.
 *
 *   npm run notification-digest -- [--day YYYY-MM-DD]   (default: yesterday, UTC)
 */
import crypto from 'node:crypto';
import { PATIENT_SIDE, patientSideVisibility } from '../src/access/policy/decide';
import { agentOfEvent, digestLines, digestOf, DMP_NOTIFICATION, isProfessional, NOTIFICATION_PREFERENCE_EXTENSION } from '../src/audit/notification';
import { argumentsOrExit, configOrExit } from './commandLine';
import { newVersion } from '../src/interactions/common';
import type { InteractionContext } from '../src/interactions/types';
import { inTransaction } from '../src/interactions/unitOfWork';
import { createLogger } from '../src/log';
import { defaultRegistryInstance } from '../src/registry/registry';
import { openDatabase } from '../src/store/database';
import { auditEventsBetween, recordsPreferring } from '../src/store/notifications';
import { readCurrent } from '../src/store/resources';
import { INTERNAL_ACCESS, readingAs, Session } from '../src/store/session';

/** The digest's id: one per patient and day, whatever the length of the patient's id. */
export function digestId(patient: string, day: string): string {
  return `digest-${crypto.createHash('sha256').update(`${patient}/${day}`).digest('hex').slice(0, 40)}`;
}

/**
 * The record's events of [from, to) that every reader of its notices is shown (the patient,
 * a legal representative), each kind read with its own visibility: what the digest may count
 * without telling any of them of an access hidden from them (decision 009, amendment).
 */
async function shownToEveryReader(session: Session, patient: string, from: string, to: string): Promise<Record<string, any>[]> {
  let events: Record<string, any>[] | undefined;
  for (const kind of PATIENT_SIDE) {
    const shown = await auditEventsBetween(new Session(session.db, readingAs(patientSideVisibility(kind, [patient]))), patient, from, to);
    const ids = new Set(shown.map((e) => e.id));
    events = (events ?? shown).filter((e) => ids.has(e.id));
  }
  return events ?? [];
}

/** Writes the digests of `day` (YYYY-MM-DD, UTC); the number written (0 when already done). */
export async function notificationDigest(ctx: InteractionContext, day: string, print: (line: string) => void = (l) => console.log(l)): Promise<number> {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) throw new Error(`--day takes a date such as 2026-01-31, got "${day}"`);
  const from = `${day}T00:00:00.000Z`;
  const to = new Date(Date.parse(from) + 86_400_000).toISOString();
  const patients = await recordsPreferring(new Session(ctx.db.knex, INTERNAL_ACCESS), DMP_NOTIFICATION, 'notification-preference', NOTIFICATION_PREFERENCE_EXTENSION, 'daily-digest');
  let written = 0;
  for (const patient of patients) {
    const id = digestId(patient, day);
    const wrote = await inTransaction(ctx, INTERNAL_ACCESS, async (session) => {
      if (await readCurrent(session, 'Communication', id, { withBody: false })) return false;
      const events = (await shownToEveryReader(session, patient, from, to)).filter((e) => e.outcome === '0' && isProfessional(agentOfEvent(e) ?? { professions: [] }));
      const lines = digestLines(events);
      if (lines.length === 0) return false;
      const sent = new Date().toISOString();
      const digest = digestOf(patient, day, lines, events.map((e) => String(e.id)), sent);
      await session.write([newVersion(ctx, digest, { id, versionId: 1, lastUpdated: sent, method: 'PUT' })]);
      return true;
    });
    if (wrote) written++;
  }
  print(`notification-digest: ${day}: ${patients.length} patient(s) with a daily digest, ${written} digest(s) written`);
  return written;
}

async function main(): Promise<void> {
  const config = configOrExit();
  const day = argumentsOrExit((args) => {
    if (args.length === 2 && args[0] === '--day') return args[1]!;
    if (args.length) throw new Error('usage: notification-digest [--day YYYY-MM-DD]');
    return new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  });
  const db = await openDatabase(config);
  try {
    const ctx = { config, registry: defaultRegistryInstance(), db, log: createLogger('silent'), pageTokenSecret: '' } as InteractionContext;
    await notificationDigest(ctx, day);
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

import fs from 'node:fs';
import readline from 'node:readline';
import { FhirError } from '../errors';
import { newVersion, splitBinaryData } from '../interactions/common';
import { assertValid, CONFORMANCE_TYPES } from '../interactions/conformanceResources';
import type { InteractionContext } from '../interactions/types';
import { inTransaction } from '../interactions/unitOfWork';
import { jsonLimits, readJson } from '../json/jsonReader';
import { INTERNAL_ACCESS, Session } from '../store/session';
import type { VersionWrite } from '../store/writeVersions';
import { commitWithoutWaiting, storedAmong } from '../store/bulkLoads';

/**
 * The bulk loader (docs/decisions/020-bulk-data.md): NDJSON resources written with the same
 * validation, index extraction and integrity checks as a create, in batches of one
 * transaction each; a line already stored is skipped (a rerun resumes), a bad line is
 * refused and reported with its number, the others are written.
 */

/** Types not loaded: they need the API's own handling (the validator's registry, an owner). */
const NOT_LOADED = new Set([...CONFORMANCE_TYPES, 'Subscription']);
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

export interface LoadProgress {
  lines: number;
  written: number;
  skipped: number;
  refused: number;
}

export interface RefusedLine {
  line: number;
  reason: string;
}

export interface LoadReport extends LoadProgress {
  refusals: RefusedLine[];
  seconds: number;
}

interface Prepared {
  line: number;
  version: VersionWrite;
}

/** Why a line cannot be loaded, from the OperationOutcome issues of the check that refused it. */
function reasonOf(e: unknown): string {
  if (e instanceof FhirError) return e.issues.map((i) => `${i.expression?.[0] ? `${i.expression[0]}: ` : ''}${i.diagnostics ?? i.code}`).join('; ');
  return (e as Error).message;
}

/** One line as a resource to load, or why not: JSON, a served type, an id. */
export function parseLine(ctx: InteractionContext, text: string): Record<string, unknown> & { resourceType: string; id: string } {
  const limits = jsonLimits(ctx.config);
  let value: unknown;
  try {
    value = readJson(text, limits).value;
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
  const body = value as Record<string, unknown>;
  const type = body.resourceType;
  if (typeof type !== 'string' || !ctx.registry.isSupported(type)) throw new Error(`resourceType ${JSON.stringify(type)} is not served here`);
  if (NOT_LOADED.has(type)) throw new Error(`${type} is not loaded in bulk: write it through the API`);
  if (typeof body.id !== 'string' || !ID.test(body.id)) throw new Error('the resource needs an id ([A-Za-z0-9-.]{1,64}): the loader keeps the ids of the file');
  return body as Record<string, unknown> & { resourceType: string; id: string };
}

/** A parsed line as a new version: validated as a create, indexed (throws the validation's refusal). */
export function prepareResource(ctx: InteractionContext, body: Record<string, unknown> & { id: string }, lastUpdated: string): VersionWrite {
  const { resource, binary } = splitBinaryData(body, ctx.config.binaryMaxBytes);
  assertValid(ctx, resource, 'create');
  return newVersion(ctx, resource, { id: body.id, versionId: 1, lastUpdated, method: 'POST', binary });
}

/**
 * Writes a batch in one transaction: what is stored already is skipped, the rest written
 * with the integrity checks of any write. When a write is refused, the batch is written
 * again one resource per transaction, so that only the refused lines are left out.
 */
async function writeBatch(ctx: InteractionContext, batch: Prepared[], report: LoadReport, durable: boolean): Promise<void> {
  const attempt = (items: Prepared[]) =>
    inTransaction(ctx, INTERNAL_ACCESS, async (session) => {
      // a crash loses at most the last batches, which a rerun writes again (the load is resumable)
      if (!durable) await commitWithoutWaiting(session);
      const stored = await storedAmong(
        session,
        items.map((p) => p.version),
      );
      const fresh = items.filter((p) => !stored.has(`${p.version.resourceType}/${p.version.id}`));
      // resources of the batch may reference each other (a document and its Patient)
      session.willWrite(fresh.map((p) => `${p.version.resourceType}/${p.version.id}`));
      if (fresh.length) await session.write(fresh.map((p) => p.version));
      return { written: fresh.length, skipped: items.length - fresh.length };
    });
  if (batch.length === 0) return;
  try {
    const done = await attempt(batch);
    report.written += done.written;
    report.skipped += done.skipped;
  } catch (e) {
    if (batch.length === 1) {
      report.refused++;
      report.refusals.push({ line: batch[0].line, reason: reasonOf(e) });
      return;
    }
    for (const one of batch) await writeBatch(ctx, [one], report, durable);
  }
}

/**
 * Loads an NDJSON file. `onProgress` is called after each batch. Lines are written in file
 * order; a reference must name a resource of an earlier line (or of the same batch) or one
 * already stored.
 */
export async function loadNdjson(
  ctx: InteractionContext,
  file: string,
  options: { batch?: number; durable?: boolean; onProgress?: (p: LoadProgress) => void } = {},
): Promise<LoadReport> {
  const started = Date.now();
  const batchSize = options.batch ?? 1000;
  const durable = options.durable ?? ctx.db.kind !== 'postgres';
  const report: LoadReport = { lines: 0, written: 0, skipped: 0, refused: 0, refusals: [], seconds: 0 };
  const input = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let batch: { line: number; body: Record<string, unknown> & { resourceType: string; id: string } }[] = [];
  // a batch is validated and indexed while the previous one is written
  let writing: Promise<void> = Promise.resolve();
  const send = async () => {
    const full = batch;
    batch = [];
    // what a previous run stored is neither validated nor written again
    const stored = await storedAmong(
      new Session(ctx.db.knex, INTERNAL_ACCESS),
      full.map((p) => ({ resourceType: p.body.resourceType, id: p.body.id })),
    );
    const prepared: Prepared[] = [];
    const lastUpdated = new Date().toISOString();
    for (const p of full) {
      if (stored.has(`${p.body.resourceType}/${p.body.id}`)) {
        report.skipped++;
        continue;
      }
      try {
        prepared.push({ line: p.line, version: prepareResource(ctx, p.body, lastUpdated) });
      } catch (e) {
        report.refused++;
        report.refusals.push({ line: p.line, reason: reasonOf(e) });
      }
    }
    await writing;
    options.onProgress?.(report);
    writing = writeBatch(ctx, prepared, report, durable);
  };
  for await (const text of input) {
    const line = ++report.lines;
    if (text.trim() === '') continue;
    try {
      batch.push({ line, body: parseLine(ctx, text) });
    } catch (e) {
      report.refused++;
      report.refusals.push({ line, reason: reasonOf(e) });
    }
    if (batch.length >= batchSize) await send();
  }
  await send();
  await writing;
  report.seconds = (Date.now() - started) / 1000;
  options.onProgress?.(report);
  report.refusals.sort((a, b) => a.line - b.line);
  return report;
}

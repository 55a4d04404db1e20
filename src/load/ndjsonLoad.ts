import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { auditEvent } from '../audit/auditEvent';
import { SERVER_DEVICE } from '../audit/notification';
import { FhirError } from '../errors';
import { newVersion, splitBinaryData } from '../interactions/common';
import { assertValid, CONFORMANCE_TYPES } from '../interactions/conformanceResources';
import type { InteractionContext } from '../interactions/types';
import { inTransaction } from '../interactions/unitOfWork';
import type { DecimalTexts } from '../json/decimals';
import { jsonLimits, readJson } from '../json/jsonReader';
import { INTERNAL_ACCESS, Session } from '../store/session';
import type { VersionWrite } from '../store/writeVersions';
import { heldRecordStates, unopenRecordRefusal } from '../store/recordLock';
import { commitWithoutWaiting, LoadCheckpoint, readCheckpoint, saveCheckpoint, storedAmong } from '../store/bulkLoads';
import type { PreparePool, PrepareItem, PrepareResult } from './preparePool';

/**
 * The bulk loader (docs/decisions/020-bulk-data.md, 024-bulk-load.md): NDJSON resources
 * written with the same validation, index extraction and integrity checks as a create, in
 * batches of one transaction each, by COPY on PostgreSQL; a checkpoint committed with each
 * batch lets a restarted load read on from there, and a line already stored is skipped; a
 * bad line is refused and reported with its number, the others are written.
 */

/** Types not loaded: they need the API's own handling (the validator's registry, an owner). */
const NOT_LOADED = new Set([...CONFORMANCE_TYPES, 'Subscription']);
const ID = /^[A-Za-z0-9\-.]{1,64}$/;

export interface LoadProgress {
  /** The last line read (counted from the file's start, also when the load resumed). */
  lines: number;
  written: number;
  skipped: number;
  refused: number;
  /** Lines a checkpoint let this run skip without reading them. */
  resumedAt: number;
}

export interface RefusedLine {
  line: number;
  reason: string;
}

export interface LoadReport extends LoadProgress {
  refusals: RefusedLine[];
  seconds: number;
  /**
   * Wall milliseconds by phase: `prepare` (parse, validate, extract: this process's CPU),
   * `write` (a batch's transaction: lookups, checks, COPY, commit), `waited` (preparing
   * done, the previous batch still being written).
   */
  phases: { prepare: number; write: number; waited: number };
}

interface Prepared {
  line: number;
  version: VersionWrite;
}

/** A line of the file: its number, text, and the byte offsets where it starts and where the next one starts. */
interface Line {
  line: number;
  text: string;
  start: number;
  end: number;
}

/** The lines of `file` from byte `start`, with their byte offsets (a checkpoint is a byte offset). */
async function* linesOf(file: string, start: number, firstLine: number): AsyncGenerator<Line> {
  let offset = start;
  let line = firstLine;
  let rest: Buffer | undefined;
  for await (const chunk of fs.createReadStream(file, { start }) as AsyncIterable<Buffer>) {
    const buf = rest?.length ? Buffer.concat([rest, chunk]) : chunk;
    let from = 0;
    for (let nl = buf.indexOf(10, from); nl !== -1; nl = buf.indexOf(10, from)) {
      const end = nl > from && buf[nl - 1] === 13 ? nl - 1 : nl;
      yield { line: ++line, text: buf.toString('utf8', from, end), start: offset + from, end: offset + nl + 1 };
      from = nl + 1;
    }
    offset += from;
    rest = buf.subarray(from);
  }
  if (rest?.length) yield { line: ++line, text: rest.toString('utf8'), start: offset, end: offset + rest.length };
}

/**
 * What names a file for its checkpoint: the SHA-256 of its size and first MiB (a file
 * regenerated, truncated or appended to is another file, read from its first line).
 */
export function fileKeyOf(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return crypto.createHash('sha256').update(`${fs.fstatSync(fd).size}\n`).update(buf.subarray(0, n)).digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/** Why a line cannot be loaded, from the OperationOutcome issues of the check that refused it. */
export function reasonOf(e: unknown): string {
  if (e instanceof FhirError) return e.issues.map((i) => `${i.expression?.[0] ? `${i.expression[0]}: ` : ''}${i.diagnostics ?? i.code}`).join('; ');
  return (e as Error).message;
}

/** One line as a resource to load (with the text of its decimals, kept as sent), or why not: JSON, a served type, an id. */
export function parseLine(ctx: InteractionContext, text: string): { body: Record<string, unknown> & { resourceType: string; id: string }; decimals?: DecimalTexts } {
  const limits = jsonLimits(ctx.config);
  let value: unknown;
  let decimals: DecimalTexts | undefined;
  try {
    ({ value, decimals } = readJson(text, limits));
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
  const body = value as Record<string, unknown>;
  const type = body.resourceType;
  if (typeof type !== 'string' || !ctx.registry.isSupported(type)) throw new Error(`resourceType ${JSON.stringify(type)} is not served here`);
  if (NOT_LOADED.has(type)) throw new Error(`${type} is not loaded in bulk: write it through the API`);
  if (typeof body.id !== 'string' || !ID.test(body.id)) throw new Error('the resource needs an id ([A-Za-z0-9-.]{1,64}): the loader keeps the ids of the file');
  return { body: body as Record<string, unknown> & { resourceType: string; id: string }, ...(decimals ? { decimals } : {}) };
}

/** A parsed line as a new version: validated as a create, indexed (throws the validation's refusal). */
export function prepareResource(ctx: InteractionContext, body: Record<string, unknown> & { id: string }, lastUpdated: string, decimals?: DecimalTexts): VersionWrite {
  const { resource, binary } = splitBinaryData(body, ctx.config.binaryMaxBytes);
  assertValid(ctx, resource, 'create');
  // decimals keep the precision they were sent with, as a create's do
  return newVersion(ctx, resource, { id: body.id, versionId: 1, lastUpdated, method: 'POST', binary, decimals });
}

/** A line prepared on this thread: its version, or why it is refused. */
function prepareLine(ctx: InteractionContext, p: PrepareItem, lastUpdated: string): PrepareResult {
  try {
    return { line: p.line, version: prepareResource(ctx, p.body, lastUpdated, p.decimals) };
  } catch (e) {
    return { line: p.line, reason: reasonOf(e) };
  }
}

/** Whether byte `at` of `file` starts a line (the byte before it is a line feed). */
function endsLine(file: string, at: number): boolean {
  // the end of a file whose last line has no line feed ends that line too
  if (at === 0 || at === fs.statSync(file).size) return true;
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(1);
    return fs.readSync(fd, b, 0, 1, at - 1) === 1 && b[0] === 10;
  } finally {
    fs.closeSync(fd);
  }
}

/** The server's record of one committed batch (decision 024): outside every record, naming the file and lines. */
function batchAuditEvent(ctx: InteractionContext, file: string, fileKey: string, first: number, last: number, written: number, recorded: string): VersionWrite {
  const user = (() => {
    try {
      return os.userInfo().username;
    } catch {
      return 'unknown';
    }
  })();
  const event = auditEvent(
    { reference: SERVER_DEVICE, display: `bulk loader run by ${user}@${os.hostname()}`, professions: [] },
    { interaction: 'create' },
    0,
    { resources: [], target: `${path.basename(file)} (sha256 ${fileKey.slice(0, 16)}) lines ${first}-${last}: ${written} resources loaded` },
    { recorded, serverUrl: ctx.config.baseUrl },
  );
  return newVersion(ctx, event, { id: crypto.randomUUID(), versionId: 1, lastUpdated: recorded, method: 'POST' });
}

interface BatchPlan {
  /** Lines of the batch, first and last (the last one read, whatever it held). */
  first: number;
  last: number;
  /** Byte offset after the last line, where a resumed load reads on. */
  bytes: number;
  prepared: Prepared[];
  /** Stop after this batch (--stop-on-error): its refused line is where a rerun starts. */
  stop: boolean;
}

interface LoadState {
  ctx: InteractionContext;
  file: string;
  fileKey: string;
  durable: boolean;
  stopOnError: boolean;
  report: LoadReport;
  /** Set when a refused line stops the load. */
  stopped?: { line: number; start: number };
}

const checkpointOf = (s: LoadState, lines: number, bytes: number): LoadCheckpoint => ({
  fileKey: s.fileKey,
  fileName: path.basename(s.file),
  lines,
  bytes,
  written: s.report.written,
  refused: s.report.refused,
});

/**
 * Writes a batch in one transaction (COPY on PostgreSQL, the write statement on the embedded
 * database), with its audit event and checkpoint: what is stored already is skipped, the
 * rest checked as any write. When that fails, the batch is written again one resource per
 * transaction through the ordinary write path, so that only the refused lines are left out.
 */
async function writeBatch(s: LoadState, plan: BatchPlan): Promise<void> {
  const t0 = performance.now();
  try {
    await writeBatchOnce(s, plan);
  } finally {
    s.report.phases.write += performance.now() - t0;
  }
}

async function writeBatchOnce(s: LoadState, plan: BatchPlan): Promise<void> {
  const { ctx, report } = s;
  const copy = ctx.db.kind === 'postgres';
  try {
    const done = await inTransaction(ctx, INTERNAL_ACCESS, async (session) => {
      // a crash loses at most the last batches with their checkpoint, which a rerun writes again
      if (!s.durable) await commitWithoutWaiting(session);
      const stored = await storedAmong(
        session,
        plan.prepared.map((p) => p.version),
      );
      const fresh = plan.prepared.filter((p) => !stored.has(`${p.version.resourceType}/${p.version.id}`)).map((p) => p.version);
      await assertRecordsOpen(session, fresh);
      // resources of the batch may reference each other (a document and its Patient)
      session.willWrite(fresh.map((v) => `${v.resourceType}/${v.id}`));
      const audit = fresh.length ? [batchAuditEvent(ctx, s.file, s.fileKey, plan.first, plan.last, fresh.length, new Date().toISOString())] : [];
      if (copy) await session.copyNew(fresh, audit);
      else if (fresh.length) {
        await session.write(fresh);
        await session.writeAudit(audit);
      }
      const done = { written: fresh.length, skipped: plan.prepared.length - fresh.length };
      await saveCheckpoint(session, { ...checkpointOf(s, plan.last, plan.bytes), written: report.written + done.written });
      return done;
    });
    report.written += done.written;
    report.skipped += done.skipped;
    return;
  } catch (e) {
    if (plan.prepared.length === 0) throw e;
  }
  // one by one: the refused ones are reported, the others written as any create
  let written = 0;
  let pending = plan.prepared;
  // a line may name a later line of its batch: what was refused is tried again while the passes write more (in file order each time)
  for (let progress = true, pass = 1; progress && pending.length > 0 && !s.stopped; pass++) {
    progress = false;
    const refused: { p: Prepared; reason: string }[] = [];
    for (const p of pending) {
      try {
        const outcome = await inTransaction(ctx, INTERNAL_ACCESS, async (session) => {
          if ((await storedAmong(session, [p.version])).size > 0) return 'skipped';
          await assertRecordsOpen(session, [p.version]);
          await session.write([p.version]);
          return 'written';
        });
        progress = true;
        if (outcome === 'written') written++;
        else report.skipped++;
      } catch (e) {
        // a lost connection, a database that stops: the load stops, and a rerun writes the batch again from its checkpoint
        if (!refusesTheLine(e)) throw e;
        refused.push({ p, reason: reasonOf(e) });
        // with --stop-on-error the first refusal is final: what follows it is not written
        if (s.stopOnError) break;
      }
    }
    pending = refused.map((r) => r.p);
    // a few passes: a chain of lines each naming the next is not worth a pass per link
    if (!progress || pending.length === 0 || s.stopOnError || pass === MAX_PASSES) {
      for (const r of refused) {
        report.refused++;
        report.refusals.push({ line: r.p.line, reason: r.reason });
      }
      if (s.stopOnError && refused.length) s.stopped = { line: refused[0].p.line, start: -1 };
      break;
    }
  }
  report.written += written;
  // the batch's event and checkpoint; after a stop, the checkpoint stays where the batch began
  await inTransaction(ctx, INTERNAL_ACCESS, async (session) => {
    if (written > 0) await session.writeAudit([batchAuditEvent(ctx, s.file, s.fileKey, plan.first, plan.last, written, new Date().toISOString())]);
    if (!s.stopped) await saveCheckpoint(session, checkpointOf(s, plan.last, plan.bytes));
  });
}

/** Passes of a failed batch's one-by-one writing. */
const MAX_PASSES = 4;

/**
 * Whether an error of a line's own write refuses that line (its data: a check, a
 * constraint, a value the database cannot index), rather than the load (the connection,
 * the database): only the first is reported as a refused line and passed over.
 */
export function refusesTheLine(e: unknown): boolean {
  if (e instanceof FhirError) return e.status < 500;
  const code = (e as { code?: unknown })?.code;
  // SQLSTATE classes 22 (data exception), 23 (integrity constraint), 54 (program limit: an index row too large)
  return typeof code === 'string' && /^(22|23|54)/.test(code);
}

/**
 * Nothing is loaded into a record that is opposed or closed: the records' states are read
 * under their lock, held until the batch commits (docs/decisions/024-bulk-load.md, amendment
 * of 2026-12-06). A record the file itself creates is not stored yet, and open.
 */
async function assertRecordsOpen(session: Session, versions: VersionWrite[]): Promise<void> {
  for (const [compartment, state] of await heldRecordStates(session, versions.map((v) => v.compartment))) {
    const refusal = unopenRecordRefusal(state, `The record of Patient/${compartment} is ${state}: nothing is loaded into it`);
    if (refusal) throw refusal;
  }
}

/** Lets the event loop run (the previous batch's COPY streams) while a batch is validated. */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Loads an NDJSON file. `onProgress` is called after each batch. Lines are written in file
 * order; a reference must name a resource of an earlier line (or of the same batch) or one
 * already stored. A load of a file whose checkpoint exists reads on from it (`restart`: from
 * the first line, skipping what is stored).
 */
export async function loadNdjson(
  ctx: InteractionContext,
  file: string,
  options: { batch?: number; durable?: boolean; stopOnError?: boolean; restart?: boolean; onProgress?: (p: LoadProgress) => void; pool?: PreparePool } = {},
): Promise<LoadReport> {
  const started = Date.now();
  const batchSize = options.batch ?? 5000;
  const fileKey = fileKeyOf(file);
  const report: LoadReport = { lines: 0, written: 0, skipped: 0, refused: 0, resumedAt: 0, refusals: [], seconds: 0, phases: { prepare: 0, write: 0, waited: 0 } };
  const s: LoadState = { ctx, file, fileKey, durable: options.durable ?? ctx.db.kind !== 'postgres', stopOnError: options.stopOnError ?? false, report };
  const checkpoint = options.restart ? undefined : await readCheckpoint(new Session(ctx.db.knex, INTERNAL_ACCESS), fileKey);
  const size = fs.statSync(file).size;
  // a checkpoint must fall at the end of a line of this file; otherwise start over (what is stored is skipped)
  const from = checkpoint && checkpoint.bytes <= size && endsLine(file, checkpoint.bytes) ? checkpoint : undefined;
  report.lines = report.resumedAt = from?.lines ?? 0;
  let batch: (PrepareItem & { start: number })[] = [];
  let firstOfBatch = report.lines + 1;
  let lastEnd = from?.bytes ?? 0;
  // a batch is validated and indexed while the previous one is written
  let writing: Promise<void> = Promise.resolve();
  const send = async (stopAt?: { line: number; start: number }) => {
    const full = batch;
    batch = [];
    const t0 = performance.now();
    // what a previous run stored is neither validated nor written again
    const stored = await storedAmong(
      new Session(ctx.db.knex, INTERNAL_ACCESS),
      full.map((p) => ({ resourceType: p.body.resourceType, id: p.body.id })),
    );
    const plan: BatchPlan = { first: firstOfBatch, last: report.lines, bytes: lastEnd, prepared: [], stop: false };
    const lastUpdated = new Date().toISOString();
    const isStored = (p: { body: { resourceType: string; id: string } }) => stored.has(`${p.body.resourceType}/${p.body.id}`);
    // with threads, the whole batch is prepared at once, in parallel; else line by line, as it is read below
    const pooled = options.pool ? new Map((await options.pool.prepare(full.filter((p) => !isStored(p)), lastUpdated)).map((r) => [r.line, r])) : undefined;
    let n = 0;
    for (const p of full) {
      if (!pooled && ++n % 64 === 0) await yieldToIo();
      if (isStored(p)) {
        report.skipped++;
        continue;
      }
      const prepared = pooled?.get(p.line) ?? prepareLine(ctx, p, lastUpdated);
      if ('version' in prepared) plan.prepared.push({ line: p.line, version: prepared.version });
      else {
        report.refused++;
        report.refusals.push({ line: p.line, reason: prepared.reason });
        if (s.stopOnError) {
          stopAt = { line: p.line, start: p.start };
          break;
        }
      }
    }
    if (stopAt) {
      // the lines before the refused one are written; a rerun starts at it
      plan.prepared = plan.prepared.filter((p) => p.line < stopAt!.line);
      plan.last = stopAt.line - 1;
      plan.bytes = stopAt.start;
      plan.stop = true;
    }
    const t1 = performance.now();
    report.phases.prepare += t1 - t0;
    await writing;
    report.phases.waited += performance.now() - t1;
    options.onProgress?.(report);
    firstOfBatch = report.lines + 1;
    writing = s.stopped ? Promise.resolve() : writeBatch(s, plan);
    if (stopAt) {
      await writing;
      s.stopped ??= stopAt;
    }
  };
  for await (const l of linesOf(file, from?.bytes ?? 0, from?.lines ?? 0)) {
    report.lines = l.line;
    lastEnd = l.end;
    if (l.text.trim() !== '') {
      try {
        batch.push({ line: l.line, start: l.start, ...parseLine(ctx, l.text) });
      } catch (e) {
        report.refused++;
        report.refusals.push({ line: l.line, reason: reasonOf(e) });
        if (s.stopOnError) {
          report.lines = l.line - 1;
          lastEnd = l.start;
          await send({ line: l.line, start: l.start });
          break;
        }
      }
    }
    if (batch.length >= batchSize) {
      await send();
      if (s.stopped) break;
    }
  }
  if (!s.stopped) await send();
  await writing;
  if (s.stopped) {
    // lines past the stop (read, or prepared while the batch that stopped was written) are neither written nor reported
    const stop = s.stopped.line;
    report.refusals = report.refusals.filter((r) => r.line <= stop);
    report.refused = report.refusals.length;
  }
  report.seconds = (Date.now() - started) / 1000;
  options.onProgress?.(report);
  report.refusals.sort((a, b) => a.line - b.line);
  return report;
}

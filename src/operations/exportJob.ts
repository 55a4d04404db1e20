import { auditInteraction } from '../audit/auditTrail';
import type { FhirRequest, InteractionContext } from '../interactions/types';
import { inTransaction } from '../interactions/unitOfWork';
import { withholdUnreadableReferences } from '../interactions/withheldReferences';
import { RawJson } from '../json/rawJson';
import type { Knex } from 'knex';
import type { Database } from '../store/database';
import { completeExport, deleteExpiredExports, ExportJob, exportPage, failExport, insertFile, readExport, recordProgress } from '../store/bulkExports';
import { readingAs, Session, StoreAccess } from '../store/session';

/** Rows read per statement, and resources per NDJSON file. */
const PAGE_SIZE = 1000;
export const FILE_MAX_RESOURCES = 10_000;

/**
 * The exports each database's process is running, so that closing the server waits for them to stop: by the
 * server's handle (`Database.shared`), the same for the request that kicks one off and for the server's close.
 */
const running = new Map<Knex, { stopping: boolean; jobs: Set<Promise<void>> }>();

/** Runs an export in this process, after its kick-off committed (docs/decisions/020-bulk-data.md). */
export function startExport(ctx: InteractionContext, id: string): void {
  const shared = ctx.db.shared;
  const mine = running.get(shared) ?? { stopping: false, jobs: new Set<Promise<void>>() };
  running.set(shared, mine);
  if (mine.stopping) return;
  // the job outlives the request that kicked it off: it runs on the server's handle, not the request's (whose
  // statements stop when its client goes away)
  const job = runExport({ ...ctx, db: { ...ctx.db, knex: shared } }, id, () => mine.stopping).catch((e) => ctx.log.error({ err: e }, 'bulk export failed'));
  mine.jobs.add(job);
  void job.finally(() => mine.jobs.delete(job));
}

/** Stops this process's exports at their next page and waits for them (server shutdown): they end as failed. */
export async function stopExports(db: Database): Promise<void> {
  const mine = running.get(db.shared);
  if (!mine) return;
  mine.stopping = true;
  await Promise.all([...mine.jobs]);
  running.delete(db.shared);
}

/** The request an export's trail records: the kick-off, as an operation. */
function auditedRequest(job: ExportJob): FhirRequest {
  const url = new URL(job.request);
  return { method: 'GET', query: [...url.searchParams] as [string, string][], headers: {}, prefer: {} };
}

class Stopped extends Error {}

/** Who the export reads as: the kick-off's visibility, and an administrator as such (some references are shown to them whatever they read). */
function exportAccess(job: ExportJob): StoreAccess {
  return { ...readingAs(job.visibility), ...(job.audit?.investigator ? { actor: { kind: 'admin', subject: '', scopes: [], authenticatedBy: 'token' } } : {}) };
}

/**
 * A page of rows as the caller's searches give them: without the references to resources
 * hidden from them, tagged SUBSETTED (docs/decisions/013-references-to-hidden-resources.md),
 * by the same code as a search page.
 */
async function asCallerReadsThem(ctx: InteractionContext, session: Session, resourceType: string, rows: { id: string; body: string }[]): Promise<string[]> {
  const entry = rows.map((r) => ({ fullUrl: `${ctx.config.baseUrl}/${resourceType}/${r.id}`, resource: new RawJson(r.body) as unknown }));
  await withholdUnreadableReferences(ctx, session, undefined, { status: 200, resource: { resourceType: 'Bundle', entry } });
  return entry.map((e) => (e.resource instanceof RawJson ? e.resource.text : JSON.stringify(e.resource)));
}

async function runExport(ctx: InteractionContext, id: string, stopping: () => boolean): Promise<void> {
  const job = await readExport(ctx.db.knex, id);
  if (!job || job.status !== 'in-progress') return;
  // the caller's visibility as the policy decided it at kick-off: every page is read through it
  const session = new Session(ctx.db.knex, exportAccess(job));
  const expiresAt = () => new Date(Date.now() + ctx.config.bulkExportTtlSeconds * 1000).toISOString();
  let seq = 0;
  let exported = 0;
  try {
    for (const [n, resourceType] of job.types.entries()) {
      let lines: string[] = [];
      const flush = async () => {
        if (lines.length === 0) return;
        await insertFile(ctx.db.knex, id, ++seq, resourceType, lines.length, lines.join('\n') + '\n');
        lines = [];
      };
      let after: string | undefined;
      for (;;) {
        if (stopping()) throw new Stopped('the server stopped during the export');
        const rows = await exportPage(session, { resourceType, level: job.level, patients: job.patients, since: job.since, until: job.transactionTime, after, limit: PAGE_SIZE });
        if (rows.length === 0) break;
        for (const body of await asCallerReadsThem(ctx, session, resourceType, rows)) {
          lines.push(body);
          if (lines.length >= FILE_MAX_RESOURCES) await flush();
        }
        exported += rows.length;
        after = rows[rows.length - 1].id;
        // a cancelled export (its row deleted) stops here
        if (!(await recordProgress(ctx.db.knex, id, `${resourceType} (${n + 1}/${job.types.length}), ${exported} resources`))) return;
        if (rows.length < PAGE_SIZE) break;
      }
      await flush();
    }
    // the trail of what was read, and the files' availability, in one commit (decision 020)
    await inTransaction(ctx, readingAs(job.visibility), async (trx) => {
      if (job.audit) {
        const audit = new Session(trx.db, exportAccess(job));
        audit.touch(session.takeTouched());
        await auditInteraction(ctx, audit, job.audit.agent, { interaction: 'operation', operation: 'export', resourceType: job.level === 'patient' ? 'Patient' : job.level === 'group' ? 'Group' : undefined }, auditedRequest(job));
        await audit.flush();
      }
      if (!(await completeExport(trx.db, id, expiresAt()))) throw new Stopped('cancelled');
    });
  } catch (e) {
    if (!(e instanceof Stopped && e.message === 'cancelled')) {
      ctx.log.warn({ err: e, exportId: id }, 'bulk export stopped');
      await failExport(ctx.db.knex, id, e instanceof Stopped ? e.message : 'the export failed on the server', expiresAt()).catch(() => undefined);
    }
  }
}

/** Deletes what expired; any worker may, and each server does so every minute (decision 020). */
export async function sweepExpiredExports(ctx: InteractionContext): Promise<void> {
  await deleteExpiredExports(ctx.db.knex, new Date().toISOString());
}

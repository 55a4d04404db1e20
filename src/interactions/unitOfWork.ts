import type { Knex } from 'knex';
import { Session } from '../store/session';
import type { InteractionContext } from './types';
import type { StoreAccess } from '../store/session';

const RETRYABLE = new Set(['40001', '40P01', '23505']);

/**
 * Runs fn in ONE database transaction. Queued writes are flushed before commit. A
 * serialisation failure, a deadlock or a unique violation from two concurrent
 * creates of the same id is retried from the start (twice at most). What the session
 * kept for after the commit runs once it has committed; a rollback drops it.
 */
export async function inTransaction<T>(ctx: InteractionContext, access: StoreAccess, fn: (session: Session) => Promise<T>, options: { deferWrites?: boolean } = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let session: Session | undefined;
    try {
      const result = await ctx.db.knex.transaction(async (trx) => {
        session = new Session(trx, access, options.deferWrites ?? false);
        const value = await fn(session);
        await session.checkBeforeCommitting();
        return value;
      });
      runAfterCommit(ctx, session!);
      return result;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (attempt < 2 && code && RETRYABLE.has(code)) continue;
      throw e;
    }
  }
}

/**
 * Runs fn on the pool: for reads, and for writes that are a single statement (committed as
 * it runs). With `deferWrites`, what fn queued is sent as one statement when it returns.
 */
export async function withoutTransaction<T>(ctx: InteractionContext, access: StoreAccess, fn: (session: Session) => Promise<T>, options: { deferWrites?: boolean } = {}): Promise<T> {
  const session = new Session(ctx.db.knex, access, options.deferWrites ?? false);
  const result = await fn(session);
  await session.flush();
  runAfterCommit(ctx, session);
  return result;
}

/** The writes are committed: a failing action cannot undo them, so it is logged and the others still run. */
function runAfterCommit(ctx: InteractionContext, session: Session): void {
  for (const action of session.takeAfterCommit()) {
    try {
      action();
    } catch (e) {
      ctx.log.error({ err: e }, 'an action after commit failed');
    }
  }
}

/** Runs `fn` in the session's transaction when it has one (a transaction Bundle entry), else in a transaction of its own (a lone request). */
export function withinTransaction<T>(ctx: InteractionContext, session: Session, fn: (s: Session) => Promise<T>): Promise<T> {
  return (session.db as Knex.Transaction).isTransaction ? fn(session) : inTransaction(ctx, session.access, fn);
}

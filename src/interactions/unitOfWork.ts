import { Session } from '../store/session';
import type { InteractionContext } from './types';
import type { StoreAccess } from '../store/session';

const RETRYABLE = new Set(['40001', '40P01', '23505']);

/**
 * Runs fn in ONE database transaction. Queued writes are flushed before commit. A
 * serialisation failure, a deadlock or a unique violation from two concurrent
 * creates of the same id is retried from the start (twice at most).
 */
export async function inTransaction<T>(ctx: InteractionContext, access: StoreAccess, fn: (session: Session) => Promise<T>, options: { deferWrites?: boolean } = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.db.knex.transaction(async (trx) => {
        const session = new Session(trx, access, options.deferWrites ?? false);
        const result = await fn(session);
        await session.flush();
        return result;
      });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (attempt < 2 && code && RETRYABLE.has(code)) continue;
      throw e;
    }
  }
}

/** Runs fn on the pool: for reads, and for writes that are a single statement. */
export function withoutTransaction<T>(ctx: InteractionContext, access: StoreAccess, fn: (session: Session) => Promise<T>): Promise<T> {
  return fn(new Session(ctx.db.knex, access, false));
}

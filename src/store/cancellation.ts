import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';

/**
 * Stopping the statements of a request whose client has gone (docs/decisions/005-request-limits.md).
 *
 * The request runs in a scope (AsyncLocalStorage) that records the pool connections it holds.
 * When its signal aborts, every further statement of the request is refused, and each
 * connection it holds has its running statement cancelled (PostgreSQL only: the embedded
 * database runs a statement on Node's own thread, so nothing else runs until it ends).
 */
interface RequestScope {
  signal: AbortSignal;
  connections: Set<unknown>;
}

const scopes = new AsyncLocalStorage<RequestScope>();
/** The scope holding each connection, and a cancellation still in flight on it. */
const owners = new WeakMap<object, RequestScope>();
const cancelling = new WeakMap<object, Promise<void>>();
/** How to stop the statement running on a connection, by the client that made it. */
const cancellers = new WeakMap<object, (connection: unknown) => Promise<void>>();

/** What PostgreSQL reports for a cancelled statement (query_canceled). */
export const QUERY_CANCELED = '57014';

function cancelledError(): Error {
  return Object.assign(new Error('The request was cancelled: its client went away'), { code: QUERY_CANCELED });
}

/** Statements that end or open a transaction pass even after the abort: a connection must never go back to the pool mid-transaction. */
const TRANSACTION_CONTROL = /^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/i;

type ClientClass = typeof import('knex').knex.Client;

/**
 * A knex client class that tracks which request holds which connection. `cancel` stops the
 * statement running on a connection (undefined: it cannot be stopped). `yieldBetweenStatements`
 * is for PGlite: its statements resolve without ever returning to Node's event loop, so a
 * request of many statements (a transaction Bundle) would otherwise starve every socket,
 * timer and client disconnection until its end.
 */
export function cancellableClient(Base: ClientClass, options: { cancel?: (connection: unknown) => Promise<void>; yieldBetweenStatements?: boolean } = {}): ClientClass {
  const { cancel, yieldBetweenStatements = false } = options;
  const run = (Base.prototype as unknown as { _query(this: unknown, c: unknown, o: unknown): Promise<unknown> })._query;
  class Cancellable extends Base {
    override async acquireConnection(): Promise<unknown> {
      const scope = scopes.getStore();
      if (scope?.signal.aborted) throw cancelledError();
      const connection = await super.acquireConnection();
      if (scope) {
        scope.connections.add(connection);
        owners.set(connection as object, scope);
      }
      if (cancel) cancellers.set(connection as object, cancel);
      return connection;
    }

    override async releaseConnection(connection: unknown): Promise<void> {
      const scope = owners.get(connection as object);
      owners.delete(connection as object);
      scope?.connections.delete(connection);
      // a cancellation still in flight must not reach the connection's next user
      const pending = cancelling.get(connection as object);
      if (pending) {
        await pending;
        cancelling.delete(connection as object);
      }
      return super.releaseConnection(connection);
    }

    async _query(connection: unknown, obj: { sql?: string }): Promise<unknown> {
      if (yieldBetweenStatements) await new Promise((resolve) => setImmediate(resolve));
      if (scopes.getStore()?.signal.aborted && !TRANSACTION_CONTROL.test(obj.sql ?? '')) throw cancelledError();
      return run.call(this, connection, obj);
    }
  }
  return Cancellable as unknown as ClientClass;
}

function cancelStatements(scope: RequestScope): void {
  for (const connection of scope.connections) {
    const cancel = cancellers.get(connection as object);
    if (!cancel || cancelling.has(connection as object)) continue;
    cancelling.set(connection as object, cancel(connection));
  }
}

/**
 * Runs fn with its statements tied to `signal`: once it aborts, the running statements are
 * cancelled and later ones refused with SQLSTATE 57014.
 */
export async function runCancellable<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  const scope: RequestScope = { signal, connections: new Set() };
  const onAbort = () => cancelStatements(scope);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await scopes.run(scope, fn);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Runs fn outside any request's scope: its statements are not tied to the signal of the
 * request that happened to start it (work shared by several requests).
 */
export function outsideRequests<T>(fn: () => T): T {
  return scopes.exit(fn);
}

/**
 * Cancels the statement running on a pooled `pg` connection with pg_cancel_backend, sent
 * on a connection of its own: the pool may be exhausted by the very statements to stop.
 * Best effort: when it fails, statement_timeout still bounds the statement.
 */
export function backendCanceller(connectionString: string): { cancel(connection: unknown): Promise<void>; close(): Promise<void> } {
  let client: Promise<pg.Client> | undefined;
  const connected = () =>
    (client ??= (async () => {
      const c = new pg.Client({ connectionString });
      c.on('error', () => {
        client = undefined;
      });
      await c.connect();
      return c;
    })().catch((e) => {
      client = undefined;
      throw e;
    }));
  return {
    async cancel(connection) {
      const pid = (connection as { processID?: number }).processID;
      if (!pid) return;
      try {
        await (await connected()).query('SELECT pg_cancel_backend($1)', [pid]);
      } catch {
        // the statement runs on until statement_timeout
      }
    },
    async close() {
      const c = await client?.catch(() => undefined);
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

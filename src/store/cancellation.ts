import type { Knex } from 'knex';
import pg from 'pg';

/**
 * Stopping the statements of a request whose client has gone (docs/decisions/005-request-limits.md).
 *
 * A request's statements go through a knex handle of its own (`requestKnex`), whose client
 * carries the request's scope: the pool connections it holds. Once it is aborted, every
 * further statement on those connections is refused, and each of them has its running
 * statement cancelled (PostgreSQL only: the embedded database runs a statement on Node's own
 * thread, so nothing else runs until it ends).
 *
 * The scope is handed over explicitly, not found through AsyncLocalStorage: that one turns on
 * promise hooks for every promise of the process, about a tenth of the CPU of a read
 * (docs/operations/benchmarks.md).
 */
interface RequestScope {
  /** Set once the request's client has gone. */
  aborted: boolean;
  connections: Set<unknown>;
}

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
    /** The request this client's statements belong to: set on a request's handle only (`requestKnex`), never on the pool's client. */
    declare requestScope?: RequestScope;

    override async acquireConnection(): Promise<unknown> {
      const scope = this.requestScope;
      if (scope?.aborted) throw cancelledError();
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
      // the connection's holder, whichever client runs the statement (a transaction's runs them on a client of its own)
      if (owners.get(connection as object)?.aborted && !TRANSACTION_CONTROL.test(obj.sql ?? '')) throw cancelledError();
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
 * A knex handle whose statements belong to one request, and what stops them: once `abort`
 * is called (its client went away), the statements running on the connections it holds
 * are cancelled and later ones refused with SQLSTATE 57014. It shares everything with
 * `knex` (pool, settings, events) but the client, a view of `knex`'s client that names the
 * request; transactions opened through it hold their connection in its scope too. `knex`'s
 * client must come from `cancellableClient`. (A plain flag and call rather than an
 * AbortController: one per request, and EventTarget's listeners cost more than the rest.)
 */
export function requestKnex(knex: Knex): { knex: Knex; abort(): void; aborted(): boolean } {
  const scope: RequestScope = { aborted: false, connections: new Set() };
  const abort = () => {
    if (scope.aborted) return;
    scope.aborted = true;
    cancelStatements(scope);
  };
  const client = Object.create(knex.client) as { requestScope?: RequestScope };
  client.requestScope = scope;
  // a knex instance is a function whose methods go through its `context` to its client
  const base = knex as unknown as { context: object };
  const context = Object.create(base.context) as { client: unknown };
  context.client = client;
  const scoped = function (tableName?: string, options?: unknown) {
    const builder = (context as unknown as { queryBuilder(): Knex.QueryBuilder }).queryBuilder();
    return tableName ? builder.table(tableName, options as never) : builder;
  } as unknown as { context: object };
  Object.setPrototypeOf(scoped, knex);
  scoped.context = context;
  return { knex: scoped as unknown as Knex, abort, aborted: () => scope.aborted };
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

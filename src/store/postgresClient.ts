import type knexFactory from 'knex';
import pg from 'pg';

type ClientClass = typeof knexFactory.Client;

interface StatementObject {
  sql?: string;
  bindings?: unknown[];
  options?: Record<string, unknown>;
  response?: unknown;
}

/**
 * The knex client of PostgreSQL, with one change: a statement (with a name, or none) is
 * handed to node-postgres as a query object built from its text, not as a settings object.
 * node-postgres copies a settings object through its property descriptors before building
 * the same query object from it, which on a read by id took about 3 % of the server's CPU
 * (docs/operations/benchmarks.md). Statements with any other option go knex's own way.
 */
export function postgresClient(Base: ClientClass): ClientClass {
  const run = (Base.prototype as unknown as { _query(this: unknown, c: unknown, o: unknown): Promise<unknown> })._query;
  class Postgres extends Base {
    async _query(connection: pg.Client, obj: StatementObject): Promise<unknown> {
      const name = obj.options?.name;
      if (!obj.sql || !onlyName(obj.options)) return run.call(this, connection, obj);
      return new Promise((resolve, reject) => {
        const query = new pg.Query(obj.sql, obj.bindings ?? [], (err: Error | undefined, response: unknown) => {
          if (err) return reject(err);
          obj.response = response;
          resolve(obj);
        });
        // as node-postgres sets it from a settings object: read when the query is sent
        if (typeof name === 'string') (query as unknown as { name?: string }).name = name;
        connection.query(query);
      });
    }
  }
  return Postgres as unknown as ClientClass;
}

/** Options knex passes along to node-postgres: none, or a statement name only. */
function onlyName(options: Record<string, unknown> | undefined): boolean {
  if (!options) return true;
  for (const key in options) if (key !== 'name' || typeof options.name !== 'string') return false;
  return true;
}

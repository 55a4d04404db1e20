import type { Knex } from 'knex';

/**
 * One statement with `?` placeholders, run on the pool or in a transaction, as
 * `db.raw(sql, bindings)` runs it but without knex's per-statement machinery: no Raw
 * object, no rewriting of the text to collect the bindings, no runner. What knex does for
 * every statement is kept, through its client: the connection taken from the pool (and
 * the request's scope, src/store/cancellation.ts) or the transaction's, the `?` turned
 * into `$n`, the `query`, `query-error` and `query-response` events, its errors.
 *
 * A text or bindings that knex would rewrite (`??` identifiers, `\?`, a knex expression
 * or a function as a binding, a count of bindings that does not match, an undefined
 * binding) go through `db.raw`, which keeps its own answer for them.
 */
export async function runStatement<T = Record<string, unknown>>(db: Knex | Knex.Transaction, sql: string, bindings: readonly unknown[], name?: string): Promise<{ rows: T[] }> {
  const text = positioned(sql, name);
  if (text.sql === null || text.placeholders !== bindings.length || !plainBindings(bindings)) {
    const raw = db.raw(sql, bindings as Knex.RawBinding[]);
    return (await (name ? raw.options({ name }) : raw)) as { rows: T[] };
  }
  const client = db.client as StatementClient;
  const connection = await client.acquireConnection();
  try {
    const obj: StatementObject = { method: 'raw', sql: text.sql, bindings: bindings.slice(), options: name ? { name } : {}, __knexQueryUid: `s${++statements}` };
    const response = client.postProcessResponse(client.processResponse(await client.query(connection, obj), undefined), undefined);
    client.emit('query-response', response, { __knexUid: connection.__knexUid, __knexTxId: connection.__knexTxId, ...obj }, undefined);
    return response as { rows: T[] };
  } finally {
    await client.releaseConnection(connection);
  }
}

let statements = 0;

interface StatementObject {
  method: 'raw';
  sql: string;
  bindings: unknown[];
  options: { name?: string };
  __knexQueryUid: string;
}

interface StatementClient {
  acquireConnection(): Promise<{ __knexUid?: string; __knexTxId?: string }>;
  releaseConnection(connection: unknown): Promise<void>;
  query(connection: unknown, obj: StatementObject): Promise<unknown>;
  processResponse(obj: unknown, runner: undefined): unknown;
  postProcessResponse(response: unknown, queryContext: undefined): unknown;
  emit(event: string, ...args: unknown[]): boolean;
}

/**
 * Each text as the client sends it (`?` turned into `$n`, as knex's client does), with its
 * count of placeholders, or null when knex would rewrite it otherwise. By the statement's
 * name when it has one (the write statement's text is made anew each time: the same text
 * object lets node-postgres see at once that the statement is the one it prepared), by the
 * text otherwise; bounded, the texts of a process are few.
 */
interface Positioned {
  source: string;
  sql: string | null;
  placeholders: number;
}
const texts = new Map<string, Positioned>();
const TEXTS_KEPT = 1000;

function positioned(sql: string, name: string | undefined): Positioned {
  const key = name ?? sql;
  let text = texts.get(key);
  if (text === undefined || text.source !== sql) {
    let n = 0;
    const plain = !sql.includes('??') && !sql.includes('\\?');
    text = { source: sql, sql: plain ? sql.replace(/\?/g, () => `$${++n}`) : null, placeholders: n };
    if (texts.size >= TEXTS_KEPT) texts.clear();
    texts.set(key, text);
  }
  return text;
}

function plainBindings(bindings: readonly unknown[]): boolean {
  for (const b of bindings) {
    if (b === undefined || typeof b === 'function') return false;
    // a knex expression (Raw, QueryBuilder) is spliced into the text by knex
    if (b !== null && typeof b === 'object' && ('toSQL' in b || 'isRawInstance' in b)) return false;
  }
  return true;
}

import cluster from 'node:cluster';
import pino, { DestinationStream, Logger } from 'pino';

/**
 * Logs are JSON lines that never carry a patient's data: no URL, query or body (the HTTP
 * edge logs none), no bound value of a SQL statement and no SQL text (database errors carry
 * both in their message and properties), and no line longer than a few kilobytes whatever
 * is handed to the logger.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    // with WORKERS=n, which worker wrote the line (docs/decisions/022-workers.md)
    base: { service: 'dmp-fhir-server', ...(cluster.isWorker ? { worker: cluster.worker!.id } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: safeError, msg: (m: unknown) => (typeof m === 'string' ? capString(m, MAX_STRING) : m) },
    formatters: { log: capLogObject },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Longest string field kept in a log line. */
const MAX_STRING = 1000;
/** Characters of all the fields of one line together, beyond which values are dropped. */
const MAX_LINE = 16 * 1024;
const MAX_DEPTH = 5;
const MAX_ITEMS = 50;
const MAX_MESSAGE = 200;
const MAX_FRAMES = 12;

function capString(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[${s.length - max} more characters]`;
}

/** A SQLSTATE: five digits or upper-case letters (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * What a log keeps of an error: its name, code, SQLSTATE, a short message and the code
 * locations of its stack. Everything else is dropped: knex prefixes the message with the
 * SQL text, PGlite adds `query` and `params` (every bound value), PostgreSQL's `detail`
 * and `where` quote values, and a message may quote the value that failed.
 */
export function safeError(e: unknown, depth = 0): Record<string, unknown> | unknown {
  if (e === null || typeof e !== 'object') return typeof e === 'string' ? { message: redactMessage(e, false) } : e;
  const error = e as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown; severity?: unknown; routine?: unknown; cause?: unknown };
  const code = typeof error.code === 'string' || typeof error.code === 'number' ? capString(String(error.code), 40) : undefined;
  const fromDatabase = code !== undefined && SQLSTATE.test(code) && (typeof error.severity === 'string' || typeof error.routine === 'string');
  // pg and PGlite name their errors "error" (PGlite's class name is minified)
  const name = fromDatabase ? 'DatabaseError' : typeof error.name === 'string' ? error.name : e.constructor?.name;
  const out: Record<string, unknown> = { name: capString(name ?? 'Error', 60) };
  if (code !== undefined) out.code = code;
  if (fromDatabase) {
    out.sqlState = code;
    if (typeof error.routine === 'string') out.routine = capString(error.routine, 60);
  }
  if (typeof error.message === 'string') out.message = redactMessage(error.message, fromDatabase);
  if (typeof error.stack === 'string') {
    // the frames only: the first line repeats the message
    const frames = error.stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, MAX_FRAMES);
    if (frames.length) out.stack = frames.map((f) => capString(f.trim(), 300)).join('\n');
  }
  if (error.cause instanceof Error && error.cause !== e && depth < 3) out.cause = safeError(error.cause, depth + 1);
  return out;
}

/**
 * A message without SQL text nor quoted values. knex writes "<sql> - <database message>":
 * the text after the last " - " is (a suffix of) the database's own message. Quoted parts
 * (`"…"`, `'…'`) and the `(column)=(value)` of key messages are where values appear.
 */
function redactMessage(message: string, fromDatabase: boolean): string {
  let text = message;
  const separator = text.lastIndexOf(' - ');
  if (separator >= 0 && (fromDatabase || /^\s*(select|insert|update|delete|with|create|alter|drop)\b/i.test(text))) text = text.slice(separator + 3);
  text = text
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/'(?:[^'\\]|\\.)*'/g, "'…'")
    .replace(/=\([^)]*\)/g, '=(…)');
  return capString(text, MAX_MESSAGE);
}

/** Every field of a log line, capped: long strings cut, long arrays and deep objects summarised, errors made safe. */
function capLogObject(object: Record<string, unknown>): Record<string, unknown> {
  const budget = { left: MAX_LINE };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    // `err` goes through its serializer (safeError), after this
    out[key] = key === 'err' ? value : capValue(value, 0, budget);
  }
  return out;
}

function capValue(value: unknown, depth: number, budget: { left: number }): unknown {
  if (budget.left <= 0) return '[dropped: log line too long]';
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean') {
    budget.left -= 8;
    return value;
  }
  if (typeof value === 'string') {
    const s = capString(value, Math.min(MAX_STRING, Math.max(budget.left, 16)));
    budget.left -= s.length;
    return s;
  }
  if (typeof value === 'bigint') return String(value);
  if (typeof value !== 'object') return `[${typeof value}]`;
  if (value instanceof Error) return capValue(safeError(value), depth, budget);
  // database errors from PGlite are not always instances of this realm's Error
  if (typeof (value as { stack?: unknown }).stack === 'string' && typeof (value as { message?: unknown }).message === 'string') return capValue(safeError(value), depth, budget);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${(value as ArrayBufferView).byteLength} bytes]`;
  if (value instanceof Date) return value.toISOString();
  if (depth >= MAX_DEPTH) return '[object]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => capValue(v, depth + 1, budget));
    if (value.length > MAX_ITEMS) items.push(`[${value.length - MAX_ITEMS} more items]`);
    return items;
  }
  const out: Record<string, unknown> = {};
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of entries.slice(0, MAX_ITEMS)) {
    budget.left -= k.length;
    out[capString(k, 100)] = capValue(v, depth + 1, budget);
  }
  if (entries.length > MAX_ITEMS) out['…'] = `${entries.length - MAX_ITEMS} more keys`;
  return out;
}

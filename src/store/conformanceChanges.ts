import pg from 'pg';
import { CONFORMANCE_CHANNEL, CONFORMANCE_VERSION_SQL } from './conformanceRows';

/** How often the counter is read as well, in case a notification was lost with its connection. */
const POLL_MS = 5000;
const RECONNECT_MS = 1000;

export interface ConformanceChanges {
  close(): Promise<void>;
}

/**
 * Tells this worker when another one committed a change of a conformance resource
 * (PostgreSQL, where several processes share the database): LISTEN on a connection of its
 * own, outside the pool. The counter is also read every few seconds, and after every
 * (re)connection, so that a notification lost with a dropped connection is made up for.
 * `changed` does not say what changed: the caller compares its resources with the rows.
 */
export function followConformanceChanges(
  connection: { databaseUrl: string; schema?: string },
  /** The counter's value when this worker last loaded the conformance resources. */
  loadedVersion: number,
  changed: () => void,
  onError: (e: Error) => void,
): ConformanceChanges {
  const schema = connection.schema ?? 'public';
  let client: pg.Client | undefined;
  let closed = false;
  let lastSeen = loadedVersion;
  let reconnect: NodeJS.Timeout | undefined;

  /** Counters move in commit order (the row stays locked until its transaction ends): a larger one is news. */
  const seen = (version: number) => {
    if (!(version > lastSeen)) return;
    lastSeen = version;
    changed();
  };
  const poll = async (c: pg.Client) => {
    const result = await c.query<{ version: string }>(CONFORMANCE_VERSION_SQL);
    seen(Number(result.rows[0]?.version));
  };

  const lost = (c: pg.Client, e?: Error) => {
    if (client !== c) return;
    client = undefined;
    if (e) onError(e);
    c.end().catch(() => undefined);
    if (!closed) reconnect = setTimeout(connect, RECONNECT_MS).unref() as NodeJS.Timeout;
  };

  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: connection.databaseUrl });
    client = c;
    c.on('error', (e) => lost(c, e));
    c.on('end', () => lost(c));
    c.on('notification', (n) => {
      const [inSchema, version] = (n.payload ?? '').split(' ');
      if (n.channel === CONFORMANCE_CHANNEL && inSchema === schema) seen(Number(version));
    });
    try {
      await c.connect();
      await c.query(`SET search_path TO "${schema}", public`);
      await c.query(`LISTEN ${CONFORMANCE_CHANNEL}`);
      // anything committed while not listening
      await poll(c);
    } catch (e) {
      lost(c, e as Error);
    }
  };

  const timer = setInterval(() => {
    if (client) poll(client).catch((e) => client && lost(client, e as Error));
  }, POLL_MS).unref();
  void connect();

  return {
    close: async () => {
      closed = true;
      clearInterval(timer);
      if (reconnect) clearTimeout(reconnect);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}

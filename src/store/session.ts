import type { Knex } from 'knex';
import { executeWrites, VersionWrite } from './writeVersions';

/**
 * The database handle of one interaction: a knex transaction (or the pool for a
 * single-statement interaction). In a transaction Bundle, writes are queued and
 * flushed as one bulk statement before the next read, so that reads always see
 * earlier writes while a thousand creates cost a handful of round trips.
 */
export class Session {
  private pending: VersionWrite[] = [];

  constructor(
    readonly db: Knex | Knex.Transaction,
    private readonly deferWrites = false,
  ) {}

  /**
   * Runs one statement. `name` makes it a prepared statement that PostgreSQL parses and
   * plans once per connection: only for fixed SQL texts (one name, one text), never for
   * the dynamic SQL of a search.
   */
  async query<T = Record<string, unknown>>(sql: string, bindings: readonly unknown[] = [], name?: string): Promise<T[]> {
    await this.flush();
    const raw = this.db.raw(sql, bindings as Knex.RawBinding[]);
    const result = await (name ? raw.options({ name }) : raw);
    return result.rows as T[];
  }

  async write(writes: VersionWrite[]): Promise<void> {
    if (this.deferWrites) {
      this.pending.push(...writes);
      return;
    }
    await this.flush();
    await executeWrites(this.db, writes);
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const writes = this.pending;
    this.pending = [];
    await executeWrites(this.db, writes);
  }
}

import crypto from 'node:crypto';
import type { Knex } from 'knex';

/**
 * The page-token secret becomes 32 bytes from the operating system's CSPRNG, generated
 * here in Node: the one 001_core wrote came from md5(random()), PostgreSQL's non-
 * cryptographic generator. It stays in server_setting so that every worker shares it.
 * Page links issued before this migration stop working (400): a search is run again.
 */
export async function up(knex: Knex): Promise<void> {
  const secret = crypto.randomBytes(32).toString('base64url');
  await knex.raw(
    `INSERT INTO server_setting (name, value) VALUES ('page_token_secret', ?)
       ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
    [secret],
  );
}

export async function down(): Promise<void> {
  // the random secret is kept: going back to a weaker one would gain nothing
}

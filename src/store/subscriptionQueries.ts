import { textArray } from './searchSql';
import type { Session } from './session';

/**
 * The dispatcher's statements (docs/decisions/010-subscriptions.md). They act for no
 * caller: what a Subscription may see is decided by searching its criteria with its
 * owner's access (src/subscriptions/ownerAccess.ts), never here.
 */

export interface OutboxRow {
  compartment: string;
  id: string;
  resourceType: string;
  resourceId: string;
  versionId: number;
  deleted: boolean;
}

export const CLAIM_OUTBOX = `SELECT o.compartment, o.id::text AS id, o.resource_type, o.resource_id, o.version_id, o.deleted FROM outbox o ORDER BY o.id LIMIT ? FOR UPDATE OF o SKIP LOCKED`;

/**
 * The oldest changes not yet matched, locked so that two dispatchers never take the same
 * (SKIP LOCKED: each takes others); to be called in a transaction that deletes them.
 * Ordered by the column `o.id`, not the output's `id` (its text): in text order change 10
 * came before change 9, and the sort of every row could not use `outbox_order`.
 */
export async function claimOutbox(session: Session, limit: number): Promise<OutboxRow[]> {
  const rows = await session.query<{ compartment: string; id: string; resource_type: string; resource_id: string; version_id: number; deleted: boolean }>(
    CLAIM_OUTBOX,
    [limit],
    'subscription_claim_outbox',
  );
  return rows.map((r) => ({ compartment: r.compartment, id: r.id, resourceType: r.resource_type, resourceId: r.resource_id, versionId: Number(r.version_id), deleted: r.deleted }));
}

export async function deleteOutbox(session: Session, rows: OutboxRow[]): Promise<void> {
  if (rows.length === 0) return;
  await session.query(
    `DELETE FROM outbox o WHERE o.compartment = ANY(?::text[]) AND (o.compartment, o.id) IN (SELECT * FROM unnest(?::text[], ?::bigint[]))`,
    [textArray(rows.map((r) => r.compartment)), textArray(rows.map((r) => r.compartment)), `{${rows.map((r) => r.id).join(',')}}`],
  );
}

export interface StoredSubscription {
  compartment: string;
  id: string;
  resource: Record<string, any>;
  owner: Record<string, any> | undefined;
}

/** The Subscriptions in a state (`active`, `requested`), with their owners. */
export async function subscriptionsWithStatus(session: Session, status: string): Promise<StoredSubscription[]> {
  const rows = await session.query<{ compartment: string; id: string; body: string; owner: string | null }>(
    `SELECT r.compartment, r.id, r.body::text AS body, o.owner::text AS owner FROM resource r
       LEFT JOIN subscription_owner o ON o.compartment = r.compartment AND o.id = r.id
      WHERE r.compartment = '' AND r.resource_type = 'Subscription' AND NOT r.deleted AND r.body->>'status' = ?`,
    [status],
    'subscription_with_status',
  );
  return rows.map((r) => ({ compartment: r.compartment, id: r.id, resource: JSON.parse(r.body), owner: r.owner ? JSON.parse(r.owner) : undefined }));
}

/** One Subscription as stored now, with its owner; undefined when gone. */
/**
 * The Subscription `id`; `lock`: its row locked until the transaction ends, so that a change
 * decided on what was read (the dispatcher's status) cannot cross the deletion of the record
 * its criteria name (src/store/recordLifecycle.ts locks it too): whichever comes second
 * waits, and finds the row gone or reads it anew.
 */
export async function subscriptionById(session: Session, id: string, options: { lock?: boolean } = {}): Promise<StoredSubscription | undefined> {
  const rows = await session.query<{ compartment: string; id: string; body: string; owner: string | null }>(
    `SELECT r.compartment, r.id, r.body::text AS body, o.owner::text AS owner FROM resource r
       LEFT JOIN subscription_owner o ON o.compartment = r.compartment AND o.id = r.id
      WHERE r.compartment = '' AND r.resource_type = 'Subscription' AND r.id = ? AND NOT r.deleted${options.lock ? ' FOR UPDATE OF r' : ''}`,
    [id],
    options.lock ? 'subscription_by_id_locked' : 'subscription_by_id',
  );
  const r = rows[0];
  return r ? { compartment: r.compartment, id: r.id, resource: JSON.parse(r.body), owner: r.owner ? JSON.parse(r.owner) : undefined } : undefined;
}

export interface Delivery {
  compartment: string;
  id: string;
  subscriptionId: string;
  resourceType: string;
  resourceId: string;
  versionId: number;
  attempts: number;
}

/** Notifications now due to a Subscription, recorded with the match (same transaction as the outbox row's deletion). */
export async function insertDeliveries(session: Session, deliveries: Omit<Delivery, 'id' | 'attempts'>[]): Promise<void> {
  if (deliveries.length === 0) return;
  await session.query(
    `INSERT INTO subscription_delivery (compartment, subscription_id, resource_type, resource_id, version_id)
       SELECT compartment, subscription_id, resource_type, resource_id, version_id
         FROM json_to_recordset(?::json) AS x(compartment text, subscription_id text, resource_type text, resource_id text, version_id integer)`,
    [JSON.stringify(deliveries.map((d) => ({ compartment: d.compartment, subscription_id: d.subscriptionId, resource_type: d.resourceType, resource_id: d.resourceId, version_id: d.versionId })))],
  );
}

/**
 * Takes due notifications for `leaseMs`: their next attempt is pushed past the lease, so
 * that a dispatcher that dies mid-delivery leaves them to be taken again (at least once).
 */
export async function claimDueDeliveries(session: Session, limit: number, leaseMs: number): Promise<Delivery[]> {
  const rows = await session.query<{ compartment: string; id: string; subscription_id: string; resource_type: string; resource_id: string; version_id: number; attempts: number }>(
    `UPDATE subscription_delivery d SET next_attempt_at = now() + (? * interval '1 millisecond')
      FROM (SELECT compartment, id FROM subscription_delivery
             WHERE delivered_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED) due
     WHERE d.compartment = due.compartment AND d.id = due.id
     RETURNING d.compartment, d.id::text AS id, d.subscription_id, d.resource_type, d.resource_id, d.version_id, d.attempts`,
    [leaseMs, limit],
    'subscription_claim_deliveries',
  );
  return rows.map((r) => ({
    compartment: r.compartment,
    id: r.id,
    subscriptionId: r.subscription_id,
    resourceType: r.resource_type,
    resourceId: r.resource_id,
    versionId: Number(r.version_id),
    attempts: Number(r.attempts),
  }));
}

export async function markDelivered(session: Session, d: Delivery): Promise<void> {
  await session.query(`UPDATE subscription_delivery SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE compartment = ? AND id = ?`, [d.compartment, d.id]);
}

/** A failed attempt: retried after `retryInMs`, or given up (`retryInMs` undefined). */
export async function markFailed(session: Session, d: Delivery, error: string, retryInMs: number | undefined): Promise<void> {
  await session.query(
    `UPDATE subscription_delivery SET attempts = attempts + 1, last_error = ?,
        next_attempt_at = now() + (? * interval '1 millisecond'), abandoned_at = CASE WHEN ? THEN now() ELSE NULL END
      WHERE compartment = ? AND id = ?`,
    [error.slice(0, 1000), retryInMs ?? 0, retryInMs === undefined, d.compartment, d.id],
  );
}

/** Gives up what is still due to a Subscription that is no longer active. */
export async function abandonDeliveries(session: Session, subscriptionId: string, reason: string): Promise<void> {
  await session.query(
    `UPDATE subscription_delivery SET abandoned_at = now(), last_error = coalesce(last_error, ?) WHERE subscription_id = ? AND delivered_at IS NULL AND abandoned_at IS NULL`,
    [reason, subscriptionId],
  );
}

/** One version of a resource (the notification's payload), whoever may see it: its body, or null for a deletion. */
export async function versionBody(
  session: Session,
  compartment: string,
  resourceType: string,
  id: string,
  versionId: number,
): Promise<{ body: string | null; deleted: boolean; lastUpdated: Date } | undefined> {
  const rows = await session.query<{ body: string | null; deleted: boolean; last_updated: Date | string }>(
    `SELECT body::text AS body, deleted, last_updated FROM resource_history WHERE compartment = ? AND resource_type = ? AND id = ? AND version_id = ?`,
    [compartment, resourceType, id, versionId],
    'subscription_version',
  );
  const r = rows[0];
  return r ? { body: r.body, deleted: r.deleted, lastUpdated: new Date(r.last_updated) } : undefined;
}

/** The Subscriptions that were due a notification of one version of a resource (what its deletion is notified to). */
export async function notifiedOf(session: Session, resourceType: string, resourceId: string, versionId: number): Promise<string[]> {
  const rows = await session.query<{ subscription_id: string }>(
    `SELECT DISTINCT subscription_id FROM subscription_delivery WHERE resource_type = ? AND resource_id = ? AND version_id = ?`,
    [resourceType, resourceId, versionId],
    'subscription_notified_of',
  );
  return rows.map((r) => r.subscription_id);
}

/** The outbox rows of earlier changes of a resource still waiting (taken by this round or by another dispatcher). */
export async function earlierChanges(session: Session, row: OutboxRow): Promise<string[]> {
  const rows = await session.query<{ id: string }>(
    `SELECT id::text AS id FROM outbox WHERE resource_type = ? AND resource_id = ? AND id < ?::bigint`,
    [row.resourceType, row.resourceId, row.id],
    'subscription_earlier_changes',
  );
  return rows.map((r) => r.id);
}

/** Who wrote a Subscription last (src/store/session.ts subscriptionOwner), undefined when unknown. */
export async function storedSubscriptionOwner(session: Session, compartment: string, id: string): Promise<Record<string, any> | undefined> {
  const rows = await session.query<{ owner: string }>(`SELECT owner::text AS owner FROM subscription_owner WHERE compartment = ? AND id = ?`, [compartment, id], 'subscription_owner_of');
  return rows[0] ? JSON.parse(rows[0].owner) : undefined;
}

import type { InteractionContext } from '../interactions/types';
import { parseRequestSearch, executeSearch } from '../interactions/search';
import { storeNewVersion } from '../interactions/update';
import { inTransaction } from '../interactions/unitOfWork';
import { INTERNAL_ACCESS, Session, StoreAccess } from '../store/session';
import { withholdUnreadableReferences } from '../interactions/withheldReferences';
import { etag } from '../interactions/common';
import { fullUrl } from '../interactions/bundlePage';
import { mayHoldWithheld } from '../access/referenceRedaction';
import {
  abandonDeliveries,
  claimDueDeliveries,
  claimOutbox,
  deleteOutbox,
  Delivery,
  earlierChanges,
  insertDeliveries,
  markDelivered,
  markFailed,
  notifiedOf,
  OutboxRow,
  subscriptionById,
  subscriptionsWithStatus,
  versionBody,
} from '../store/subscriptionQueries';
import { ownerAccess, SubscriptionOwner } from './ownerAccess';
import { criteriaSearchRefusal } from './criteriaSearch';
import { afterFailure, endpointRefusal, headerLine, parseCriteria, subscriptionDefect } from './subscriptionRules';

/** Changes matched, and notifications sent, per round. */
const OUTBOX_BATCH = 100;
/** Notifications in flight at once: a slow endpoint holds one of them, not the round. */
const MAX_IN_FLIGHT = 20;

export interface Dispatcher {
  /** One round: accept requested Subscriptions, match changes, send what is due. */
  runOnce(): Promise<void>;
  /** Stops polling and aborts deliveries in flight (they are retried by the next dispatcher: at least once). */
  close(): Promise<void>;
}

/**
 * Delivers R4 rest-hook notifications from the outbox (docs/decisions/010-subscriptions.md).
 * Every state is in the database: several dispatchers may run on one PostgreSQL database
 * (rows are taken with SKIP LOCKED or leased), and a restart resumes where the last one stopped.
 */
export function startDispatcher(ctx: InteractionContext, options: { poll?: boolean; keepProcessAlive?: boolean } = {}): Dispatcher {
  const { config, log } = ctx;
  // its own knex handle on the same pool: its statements are not the requests' (statement counts, logs)
  const knex = ctx.db.knex.withUserParams({ subscriptionDispatcher: true });
  const dctx: InteractionContext = { ...ctx, db: { ...ctx.db, knex } };
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> = Promise.resolve();
  let closed = false;
  const inFlight = new Set<Promise<void>>();

  const runOnce = (): Promise<void> => {
    round = round.then(async () => {
      await activateRequested(dctx);
      while ((await fanOut(dctx)) === OUTBOX_BATCH && !closed);
      await deliverDue(dctx, stopping.signal, inFlight);
    });
    return round;
  };

  const schedule = () => {
    if (closed) return;
    timer = setTimeout(() => {
      runOnce()
        .catch((e) => {
          round = Promise.resolve();
          if (!closed) log.error({ err: e }, 'subscription dispatcher round failed');
        })
        .finally(schedule);
    }, config.subscriptionPollMs);
    // in the server, the HTTP listener keeps the process alive; alone, the dispatcher does
    if (!options.keepProcessAlive) timer.unref?.();
  };
  if (options.poll !== false) schedule();

  return {
    runOnce,
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      stopping.abort();
      await round.catch(() => undefined);
      await Promise.all([...inFlight]);
    },
  };
}

/** A requested Subscription becomes active when this deployment accepts its endpoint, `error` otherwise. */
async function activateRequested(ctx: InteractionContext): Promise<void> {
  const requested = await subscriptionsWithStatus(new Session(ctx.db.knex, INTERNAL_ACCESS), 'requested');
  for (const sub of requested) {
    // criteria stored before they were checked on writing, and no longer searchable, put it in error rather than active and silent
    const defect =
      subscriptionDefect(sub.resource)?.message ??
      criteriaSearchRefusal(ctx, parseCriteria(sub.resource.criteria)!) ??
      endpointRefusal(String(sub.resource.channel?.endpoint), ctx.config.subscriptionAllowHttp);
    // one Subscription whose change is refused (a shape stored before a rule) holds back none of the others
    await setStatus(ctx, sub.id, 'requested', defect ? { status: 'error', error: defect } : { status: 'active' }).catch((e) =>
      ctx.log.warn({ err: e, subscription: sub.id }, 'a requested Subscription could not change status'),
    );
  }
}

/** Writes a new version of a Subscription with another status, unless it changed meanwhile from `from`. */
async function setStatus(ctx: InteractionContext, id: string, from: string, change: { status: string; error?: string }): Promise<void> {
  await inTransaction(ctx, INTERNAL_ACCESS, async (session) => {
    // locked: a record deletion that takes it meanwhile is waited for, and then nothing is written
    const current = await subscriptionById(session, id, { lock: true });
    if (!current || current.resource.status !== from) return;
    const { error: _previous, ...rest } = current.resource;
    const resource = { ...rest, status: change.status, ...(change.error ? { error: change.error } : {}) };
    await storeNewVersion(ctx, session, { method: 'PUT', query: [], headers: {}, prefer: { return: 'minimal' } }, 'Subscription', id, resource);
  });
}

/**
 * Matches the oldest changes against the active Subscriptions: each match becomes a
 * notification due, and the change leaves the outbox, in one transaction. A Subscription
 * matches when its criteria, restricted to the changed resource, find it with its owner's
 * access. A deletion is found by no search: it is due to the Subscriptions that were due
 * the version it deletes, whose owner may still run their search.
 */
async function fanOut(ctx: InteractionContext): Promise<number> {
  return ctx.db.knex.transaction(async (trx) => {
    const session = new Session(trx, INTERNAL_ACCESS);
    const rows = await claimOutbox(session, OUTBOX_BATCH);
    if (rows.length === 0) return 0;
    const active = (await subscriptionsWithStatus(session, 'active')).filter((s) => s.resource.channel?.type === 'rest-hook');
    const due: Parameters<typeof insertDeliveries>[1] = [];
    const taken = new Set(rows.map((r) => r.id));
    const later: OutboxRow[] = [];
    for (const row of rows) {
      if (row.deleted) {
        // the version it deletes must have been matched first (in this round, or committed by an earlier one)
        if ((await earlierChanges(session, row)).some((id) => !taken.has(id))) {
          later.push(row);
          continue;
        }
        const told = new Set(await notifiedOf(session, row.resourceType, row.resourceId, row.versionId - 1));
        for (const d of due) if (d.resourceType === row.resourceType && d.resourceId === row.resourceId && d.versionId === row.versionId - 1) told.add(d.subscriptionId);
        for (const sub of active) {
          const criteria = parseCriteria(sub.resource.criteria);
          if (!told.has(sub.id) || !criteria) continue;
          if (await ownerAccess(ctx, trx, sub.owner as SubscriptionOwner | undefined, criteria)) {
            due.push({ compartment: row.compartment, subscriptionId: sub.id, resourceType: row.resourceType, resourceId: row.resourceId, versionId: row.versionId });
          }
        }
        continue;
      }
      for (const sub of active) {
        const criteria = parseCriteria(sub.resource.criteria);
        if (!criteria || criteria.resourceType !== row.resourceType) continue;
        if (await matches(ctx, trx, sub.owner as SubscriptionOwner | undefined, criteria, row.resourceId)) {
          due.push({ compartment: row.compartment, subscriptionId: sub.id, resourceType: row.resourceType, resourceId: row.resourceId, versionId: row.versionId });
        }
      }
    }
    await insertDeliveries(session, due);
    // a deletion whose earlier change another dispatcher holds waits for the next round
    await deleteOutbox(session, rows.filter((r) => !later.includes(r)));
    return rows.length - later.length;
  });
}

async function matches(ctx: InteractionContext, trx: Parameters<typeof ownerAccess>[1], owner: SubscriptionOwner | undefined, criteria: NonNullable<ReturnType<typeof parseCriteria>>, id: string): Promise<boolean> {
  const access = await ownerAccess(ctx, trx, owner, criteria);
  if (!access) return false;
  let search;
  try {
    search = parseRequestSearch(ctx, criteria.resourceType, [...criteria.query, ['_id', id], ['_count', '1'], ['_total', 'none']], true);
  } catch (e) {
    // criteria this server cannot search match nothing; the owner sees why in the log only
    ctx.log.warn({ err: e, resourceType: criteria.resourceType }, 'subscription criteria cannot be searched');
    return false;
  }
  const page = await executeSearch(ctx, new Session(trx, access), search, { withTotal: false });
  return page.rows.length > 0;
}

/**
 * Starts sending what is due, without waiting for the answers: each notification is leased
 * for longer than its request may last, so the next rounds leave it alone meanwhile.
 */
async function deliverDue(ctx: InteractionContext, stopping: AbortSignal, inFlight: Set<Promise<void>>): Promise<void> {
  const room = MAX_IN_FLIGHT - inFlight.size;
  if (room <= 0 || stopping.aborted) return;
  const session = new Session(ctx.db.knex, INTERNAL_ACCESS);
  const leaseMs = ctx.config.subscriptionTimeoutMs * 2 + 1000;
  for (const d of await claimDueDeliveries(session, room, leaseMs)) {
    const sending: Promise<void> = deliver(ctx, d, stopping)
      .catch((e) => ctx.log.error({ err: e, subscription: d.subscriptionId }, 'subscription delivery failed'))
      .finally(() => inFlight.delete(sending));
    inFlight.add(sending);
  }
}

/**
 * The version a notification carries, as its owner reads it: without the references they
 * cannot follow (docs/decisions/013-references-to-hidden-resources.md).
 */
async function asOwnerReadsIt(ctx: InteractionContext, access: StoreAccess, resourceType: string, body: string): Promise<string> {
  if (!mayHoldWithheld(resourceType, body)) return body;
  const answer = await withholdUnreadableReferences(ctx, new Session(ctx.db.knex, access), resourceType, { status: 200, resourceText: body });
  return answer.resourceText ?? body;
}

/**
 * The owner's access when they may still be told of this change, decided at the moment it
 * is sent (a consent withdrawn, a label set or a role ended since the match applies to what
 * is still due, retries included): their search still runs, and the resource notified, unless
 * deleted, is one they read now. Undefined: nothing is sent (decisions 010, 035).
 */
async function ownerStillReads(ctx: InteractionContext, sub: { resource: Record<string, any>; owner?: unknown }, d: Delivery, deleted: boolean): Promise<StoreAccess | undefined> {
  const criteria = parseCriteria(sub.resource.criteria);
  const access = criteria ? await ownerAccess(ctx, ctx.db.knex, sub.owner as SubscriptionOwner | undefined, criteria) : undefined;
  if (!access || deleted) return access;
  const search = parseRequestSearch(ctx, d.resourceType, [['_id', d.resourceId], ['_count', '1'], ['_total', 'none']], true);
  const page = await executeSearch(ctx, new Session(ctx.db.knex, access), search, { withTotal: false });
  return page.rows.length > 0 ? access : undefined;
}

async function deliver(ctx: InteractionContext, d: Delivery, stopping: AbortSignal): Promise<void> {
  const session = new Session(ctx.db.knex, INTERNAL_ACCESS);
  const sub = await subscriptionById(session, d.subscriptionId);
  if (!sub || sub.resource.status !== 'active') {
    await markFailed(session, d, 'the Subscription is no longer active', undefined);
    return;
  }
  const version = await versionBody(session, d.compartment, d.resourceType, d.resourceId, d.versionId);
  const access = await ownerStillReads(ctx, sub, d, version?.deleted ?? false);
  if (!access) {
    await markFailed(session, d, 'the owner may no longer read what this notification is about', undefined);
    return;
  }
  const channel = sub.resource.channel ?? {};
  const endpoint = String(channel.endpoint);
  const refusal = endpointRefusal(endpoint, ctx.config.subscriptionAllowHttp);
  let error: string | undefined = refusal;
  if (!refusal) {
    const headers: Record<string, string> = {};
    for (const line of channel.header ?? []) {
      const h = headerLine(line);
      if (h) headers[h[0]] = h[1];
    }
    let body: string | undefined;
    if (channel.payload) {
      body = version?.deleted ? JSON.stringify(deletionNotice(ctx, d, version.lastUpdated)) : version?.body ?? undefined;
      if (body !== undefined && !version?.deleted) body = await asOwnerReadsIt(ctx, access, d.resourceType, body);
      headers['Content-Type'] = 'application/fhir+json';
    }
    try {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers,
        body,
        // a redirect is not followed: the endpoint is the one the subscriber named
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(ctx.config.subscriptionTimeoutMs), stopping]),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status > 299) error = `The endpoint answered ${res.status}`;
    } catch (e) {
      if (stopping.aborted) return; // the lease expires and the next dispatcher sends it again
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      error = (e as Error).name === 'TimeoutError' ? `The endpoint did not answer within ${ctx.config.subscriptionTimeoutMs} ms` : `The endpoint could not be reached (${cause ?? (e as Error).message})`;
    }
  }
  if (error === undefined) {
    await markDelivered(session, d);
    return;
  }
  const next = refusal ? ({ giveUp: true } as const) : afterFailure(d.attempts + 1, ctx.config.subscriptionMaxAttempts, ctx.config.subscriptionBackoffMs);
  if ('retryInMs' in next) {
    await markFailed(session, d, error, next.retryInMs);
    return;
  }
  await markFailed(session, d, error, undefined);
  const reason = `Notification failed ${d.attempts + 1} times: ${error}`;
  await setStatus(ctx, sub.id, 'active', { status: 'error', error: reason });
  await abandonDeliveries(session, sub.id, reason);
  ctx.log.warn({ subscription: sub.id, reason }, 'subscription set to error');
}

/**
 * The payload of a deletion: nothing of the resource is left to send, so a history Bundle
 * of one entry saying what was deleted, as `_history` shows it (decision 010).
 */
export function deletionNotice(ctx: InteractionContext, d: Pick<Delivery, 'resourceType' | 'resourceId' | 'versionId'>, lastUpdated: Date): Record<string, unknown> {
  const url = `${d.resourceType}/${d.resourceId}`;
  return {
    resourceType: 'Bundle',
    type: 'history',
    timestamp: lastUpdated.toISOString(),
    entry: [{ fullUrl: fullUrl(ctx, d.resourceType, d.resourceId), request: { method: 'DELETE', url }, response: { status: '204 No Content', etag: etag(d.versionId), lastModified: lastUpdated.toISOString() } }],
  };
}

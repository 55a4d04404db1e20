import type { TokenClaims } from '../access/actor';
import type { Route } from '../interactions/dispatch';
import type { FhirRequest, InteractionContext } from '../interactions/types';
import { checkScopes, scopedVisibility } from '../pipeline/authenticate';
import { authorize } from '../pipeline/authorize';
import { resolveActor } from '../pipeline/resolveActor';
import { INTERNAL_ACCESS, Session, StoreAccess } from '../store/session';
import type { Knex } from 'knex';
import type { Criteria } from './subscriptionRules';

/** Who wrote a Subscription (src/store/session.ts subscriptionOwner). */
export interface SubscriptionOwner {
  kind: 'internal' | 'admin' | 'practitioner' | 'patient' | 'related-person' | 'device';
  subject?: string;
  fhirUser?: string;
  scopes?: TokenClaims['scopes'];
  roleIds?: string[];
}

/**
 * The access a Subscription's criteria are searched with: its owner's, decided now as for
 * a request of theirs running that search (docs/decisions/010-subscriptions.md). The
 * owner is resolved again, so that a deactivated account, an ended role or a withdrawn
 * consent stops the notifications. Undefined: the owner may not run this search (no delivery).
 * `internal` owners are the unrestricted test client (refused in production).
 */
export async function ownerAccess(ctx: InteractionContext, db: Knex | Knex.Transaction, owner: SubscriptionOwner | undefined, criteria: Criteria): Promise<StoreAccess | undefined> {
  if (!owner) return undefined;
  if (owner.kind === 'internal') return ctx.config.production ? undefined : INTERNAL_ACCESS;
  if (!ctx.auth) return undefined;
  const facts = new Session(db, INTERNAL_ACCESS);
  const claims: TokenClaims = {
    issuer: 'subscription',
    subject: owner.subject ?? '',
    fhirUser: owner.fhirUser,
    scopes: owner.scopes ?? [],
    rawScopes: owner.kind === 'admin' ? ['admin'] : [],
  };
  const route: Route = { interaction: 'search-type', resourceType: criteria.resourceType };
  const req: FhirRequest = { method: 'GET', resourceType: criteria.resourceType, query: criteria.query, headers: {}, prefer: {} };
  try {
    let actor = await resolveActor(facts, claims, Date.now());
    // a practitioner subscribed in the roles they acted in then, those still active
    if (actor.kind === 'practitioner' && owner.roleIds) actor = { ...actor, roles: actor.roles.filter((r) => owner.roleIds!.includes(r.roleId)) };
    checkScopes(actor, route, req);
    const access = await authorize(facts, ctx.auth!.policy, { actor }, route, req);
    return { ...access, visibility: scopedVisibility(access.visibility, actor) };
  } catch (e) {
    // refused (401/403): no delivery; anything else is a fault to retry
    if (typeof (e as { status?: number }).status === 'number' && (e as { status: number }).status < 500) return undefined;
    throw e;
  }
}

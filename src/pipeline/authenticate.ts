import type { Actor } from '../access/actor';
import { criteriaSearchRefusal } from '../subscriptions/criteriaSearch';
import type { AuditAgent } from '../audit/auditEvent';
import { auditFailure } from '../audit/auditTrail';
import { scopeAllows, type ScopeContext, type ScopeOperation } from '../access/authn/scopes';
import type { TrustedIssuer } from '../access/authn/issuers';
import { verifyBearer } from '../access/authn/verifyToken';
import { ClientTlsSocket, identifyClientCertificate } from '../access/authn/clientCertificate';
import { crossSiteCertificateRefusal } from '../access/authn/crossSiteCertificate';
import { Forbidden, Unauthorized } from '../errors';
import type { Route } from '../interactions/dispatch';
import type { FhirRequest, InteractionContext } from '../interactions/types';
import { OPERATIONS } from '../operations/registry';
import { INTERNAL_ACCESS, Session, StoreAccess } from '../store/session';
import type { FactsRead } from '../store/accessFacts';
import type { Visibility } from '../store/visibility';
import { authorize, factsWanted, PolicySetup } from './authorize';
import { CERTIFICATE_ISSUER, certificateClaims, resolveActorWithFacts } from './resolveActor';

/** Who the audit trail names: the actor's resource and name, their professions, the token, the client's address, break-glass. */
export function auditAgentOf(actor: Actor, issuer: string, req: FhirRequest): AuditAgent {
  const reference = actor.kind === 'admin' ? undefined : `${actor.kind === 'practitioner' ? 'Practitioner' : actor.kind === 'patient' ? 'Patient' : actor.kind === 'related-person' ? 'RelatedPerson' : 'Device'}/${actor.id}`;
  const professions = actor.kind === 'practitioner' ? actor.roles.map((role) => role.profession).filter((p): p is NonNullable<typeof p> => Boolean(p)) : [];
  const breakGlass = req.headers['x-break-glass'];
  return {
    reference,
    // the patient's side is named by reference only: an event may be filed in another record (a refused attempt) and outlive the actor's own record (decision 017)
    display: actor.kind === 'patient' || actor.kind === 'related-person' ? undefined : actor.display,
    identifier: { system: issuer, value: actor.subject },
    professions,
    network: req.clientAddress,
    ...(breakGlass !== undefined ? { breakGlass } : {}),
  };
}

/**
 * The one request a person whose record is opposed (their Patient inactive) still makes:
 * `$reopen` of their own record, withdrawing the opposition (decision 017). The lifecycle
 * policy decides it; every other request of theirs stays refused at sign-in.
 */
function withdrawsOpposition(r: Route): string | undefined {
  return r.interaction === 'operation' && r.operation === 'reopen' && r.resourceType === 'Patient' && r.id ? `Patient/${r.id}` : undefined;
}

/** What the edge needs to know who calls and what they may do. */
export interface AuthSetup {
  issuers: TrustedIssuer[];
  policy: PolicySetup;
}

/** The SMART operation letter an interaction needs, and on which type ('*' = every type). */
export function scopeNeed(r: Route, req: FhirRequest): { op: ScopeOperation; type: string } | undefined {
  const type = r.resourceType ?? '*';
  switch (r.interaction) {
    case 'capabilities':
    case 'transaction':
      return undefined; // no data of its own; each Bundle entry is checked as it runs
    case 'bulk-status':
    case 'bulk-cancel':
    case 'bulk-file':
      return undefined; // what the kick-off's scopes and policy allowed, handed to the same caller only (decision 020)
    case 'read':
    case 'vread':
    case 'history-instance':
      return { op: 'r', type };
    case 'search-type':
    case 'history-type':
    case 'history-system':
      return { op: 's', type };
    case 'search-compartment':
      return { op: 's', type: r.compartmentType === '*' || !r.compartmentType ? '*' : r.compartmentType };
    case 'create':
      return { op: 'c', type };
    case 'update':
    case 'patch':
    case 'conditional-update':
    case 'conditional-patch':
      return { op: 'u', type };
    case 'delete':
    case 'conditional-delete':
      return { op: 'd', type };
    case 'operation': {
      const op = OPERATIONS.find((o) => o.name === r.operation);
      // validating a posted resource reads nothing stored: a valid token is enough (decision 008)
      if (op?.storageFree && !r.id) return undefined;
      return { op: op?.affectsState && req.method !== 'GET' ? 'u' : 'r', type };
    }
  }
}

/** Which scopes count for an actor: patient apps act in `patient/` scopes, people in `user/`, systems in `system/`. */
function scopeContexts(actor: Actor): ScopeContext[] {
  switch (actor.kind) {
    case 'patient':
    case 'related-person':
      return ['patient', 'user'];
    case 'practitioner':
      return ['user', 'patient'];
    case 'device':
      return ['system'];
    case 'admin':
      return ['system', 'user'];
  }
}

/** Scopes bound what the application may ask; the policy bounds what the person gets. */
export function checkScopes(actor: Actor, r: Route, req: FhirRequest): void {
  const need = scopeNeed(r, req);
  if (!need) return;
  // administrators manage through the `admin` scope; their reach is bounded by the policy
  if (actor.kind === 'admin') return;
  if (!scopeAllows(actor.scopes, need.type, need.op, scopeContexts(actor))) {
    const wanted = `${scopeContexts(actor)[0]}/${need.type}.${need.op}`;
    throw new Forbidden(`The token's scopes do not allow this interaction (it needs a scope such as ${wanted})`, wanted);
  }
}

/**
 * The types the token's scopes let the caller read (`r` or `s`), as a bound on every row a
 * statement touches: a scope checked only on the addressed type would let `_include`,
 * `_revinclude`, `_has`, chains and `$everything` reach the others. Undefined: every type.
 */
export function scopedReadTypes(actor: Actor): string[] | undefined {
  if (actor.kind === 'admin') return undefined;
  const contexts = scopeContexts(actor);
  const reading = actor.scopes.filter((s) => contexts.includes(s.context) && /[rs]/.test(s.operations));
  if (reading.some((s) => s.resourceType === '*')) return undefined;
  return [...new Set(reading.map((s) => s.resourceType))];
}

/** The policy's visibility narrowed to the types the scopes let the caller read. */
export function scopedVisibility(visibility: Visibility, actor: Actor): Visibility {
  const types = scopedReadTypes(actor);
  if (!types) return visibility;
  const narrowed: Visibility = { ...visibility, resourceTypes: visibility.resourceTypes ? visibility.resourceTypes.filter((t) => types.includes(t)) : types };
  // one's own Subscriptions are read under a scope that reads Subscription, like any type
  if (!types.includes('Subscription')) delete narrowed.ownSubscriptions;
  return narrowed;
}

/**
 * Who calls and what they may do, for one HTTP request: the verified token (or, without
 * one, the verified client certificate of the connection), the actor behind it, the
 * scopes, then the policy's decision as the access every session of this request carries
 * (Bundle entries included).
 */
export async function authenticate(ctx: InteractionContext, auth: AuthSetup, r: Route, req: FhirRequest, connection?: ClientTlsSocket): Promise<StoreAccess> {
  if (r.interaction === 'capabilities') return INTERNAL_ACCESS;
  // a certificate presented on this connection must verify, whatever else the request carries
  const certificate = connection ? identifyClientCertificate(connection) : undefined;
  // the facts that establish who the caller is are read for no caller
  const facts = new Session(ctx.db.knex, INTERNAL_ACCESS);
  let resolved: { actor: Actor; facts?: FactsRead };
  let caller: string;
  let issuer: string;
  // the records the request addresses are read with the actor: one statement
  const wanted = factsWanted(r, req);
  if (certificate && req.headers.authorization === undefined) {
    const refusal = crossSiteCertificateRefusal(req.headers);
    if (refusal) throw new Unauthorized(refusal, false);
    const claims = await certificateClaims(facts, certificate);
    issuer = CERTIFICATE_ISSUER;
    caller = `certificate ${claims.subject}`;
    resolved = await resolveActorWithFacts(facts, claims, Date.now(), 'certificate', wanted);
  } else {
    const claims = await verifyBearer(req.headers.authorization, auth.issuers, { baseUrl: ctx.config.baseUrl, clockSkewSeconds: ctx.config.clockSkewSeconds });
    // the token decides who the caller is, so its issuer names them in the trail
    issuer = claims.issuer;
    caller = `${claims.issuer} ${claims.subject}`;
    // the unrestricted test client (refused in production) is not audited: docs/decisions/009-audit.md
    if (claims.testClient) return { ...INTERNAL_ACCESS, caller, criteriaRefusal: (c) => criteriaSearchRefusal(ctx, c) };
    resolved = await resolveActorWithFacts(facts, claims, Date.now(), 'token', wanted, withdrawsOpposition(r));
  }
  const { actor } = resolved;
  const auditAgent = auditAgentOf(actor, issuer, req);
  let access: StoreAccess;
  try {
    access = await authorize(facts, auth.policy, { actor, breakGlass: req.headers['x-break-glass'], facts: resolved.facts }, r, req);
  } catch (e) {
    // a record closed to the caller is refused before the request runs, and audited as such
    await auditFailure(ctx, { ...INTERNAL_ACCESS, auditAgent }, r, req, e);
    throw e;
  }
  return {
    ...access,
    auditAgent,
    visibility: scopedVisibility(access.visibility, actor),
    caller,
    checkInteraction: (entry: Route, entryReq: FhirRequest) => checkScopes(actor, entry, entryReq),
    criteriaRefusal: (c) => criteriaSearchRefusal(ctx, c),
  };
}

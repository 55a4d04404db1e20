import type { Scope } from '../actor';

/**
 * SMART App Launch scopes, as the access decisions read them (docs/decisions/007).
 * Anything we cannot read exactly grants nothing: dropping a scope narrows what a token
 * may ask, which is always safe; guessing could widen it.
 */

export type ScopeOperation = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeContext = Scope['context'];

/** Scopes that are about identity or the launch, not about resources. */
const NON_RESOURCE_SCOPES = new Set(['openid', 'fhirUser', 'profile', 'launch', 'offline_access', 'online_access', 'admin']);

/** SMART v1 suffixes and the v2 letters they mean. */
const V1_SUFFIXES = new Map([
  ['read', 'rs'],
  ['write', 'cud'],
  ['*', 'cruds'],
]);

// The letters must come in the order c, r, u, d, s (SMART v2 §scopes), at least one.
const V2_LETTERS = /^c?r?u?d?s?$/;
const SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]{0,63})\.([a-z*]+)$/;

export interface ParsedScopes {
  /** Resource scopes this server honours. */
  scopes: Scope[];
  /** Strings that were neither honoured resource scopes nor known non-resource scopes. */
  dropped: string[];
}

/** One scope string as a resource scope, or undefined when it grants nothing here. */
export function parseScope(raw: string): Scope | undefined {
  // A v2 query restriction (`?category=…`) would have to be enforced on every read and
  // search; granting the scope without it would widen it. So the whole scope is dropped.
  if (raw.includes('?')) return undefined;
  const m = SCOPE.exec(raw);
  if (!m) return undefined;
  const [, context, resourceType, suffix] = m;
  const operations = V1_SUFFIXES.get(suffix) ?? (V2_LETTERS.test(suffix) ? suffix : undefined);
  if (!operations) return undefined;
  return { context: context as ScopeContext, resourceType, operations };
}

/** Splits a token's `scope` claim (space-separated) into honoured resource scopes and the rest. */
export function parseScopes(claim: string): ParsedScopes {
  const scopes: Scope[] = [];
  const dropped: string[] = [];
  for (const raw of claim.split(' ').filter(Boolean)) {
    if (NON_RESOURCE_SCOPES.has(raw) || raw.startsWith('launch/')) continue;
    const scope = parseScope(raw);
    if (scope) scopes.push(scope);
    else dropped.push(raw);
  }
  return { scopes, dropped };
}

/** Whether the raw scope strings include `admin` (the administrator's token). */
export function hasAdminScope(rawScopes: readonly string[]): boolean {
  return rawScopes.includes('admin');
}

/**
 * Whether some scope lets the caller ask for `op` on `resourceType`. `context`, when given,
 * restricts which scopes count (e.g. only `patient/` scopes for a patient app).
 */
export function scopeAllows(
  scopes: readonly Scope[],
  resourceType: string,
  op: ScopeOperation,
  context?: ScopeContext | readonly ScopeContext[],
): boolean {
  const contexts = context === undefined ? undefined : typeof context === 'string' ? [context] : context;
  return scopes.some(
    (s) =>
      (s.resourceType === '*' || s.resourceType === resourceType) &&
      s.operations.includes(op) &&
      (contexts === undefined || contexts.includes(s.context)),
  );
}

/**
 * What this server accepts of an R4 Subscription and how it retries, as pure decisions
 * (docs/decisions/010-subscriptions.md).
 */

/** The search a criteria string names: `DocumentReference?patient=x` → type and query pairs. */
export interface Criteria {
  resourceType: string;
  query: [string, string][];
}

export function parseCriteria(criteria: unknown): Criteria | undefined {
  if (typeof criteria !== 'string') return undefined;
  const m = /^([A-Z][A-Za-z]{1,63})(?:\?(.*))?$/s.exec(criteria.trim());
  if (!m) return undefined;
  const query: [string, string][] = [];
  for (const [name, value] of new URLSearchParams(m[2] ?? '')) query.push([name, value]);
  return { resourceType: m[1], query };
}

/** Result parameters that have no meaning for "does this one resource match". */
const RESULT_PARAMETERS = /^_(count|sort|include|revinclude|summary|elements|total|contained|containedType|page|format|pretty)(:|$)/;

/**
 * Why a Subscription cannot be accepted as written, or undefined. Checked on every write
 * (so a client is told at once, 422); the endpoint's scheme is checked by the dispatcher
 * (it depends on the deployment: SUBSCRIPTION_ALLOW_HTTP).
 */
export function subscriptionDefect(resource: Record<string, any>): { message: string; expression: string } | undefined {
  const criteria = parseCriteria(resource.criteria);
  if (!criteria) return { message: 'Subscription.criteria must be a FHIR search such as DocumentReference?patient=Patient/123', expression: 'Subscription.criteria' };
  if (criteria.resourceType === 'AuditEvent') return { message: 'The audit trail is read with a search, not subscribed to', expression: 'Subscription.criteria' };
  const result = criteria.query.find(([name]) => RESULT_PARAMETERS.test(name) || name === '_id');
  if (result) return { message: `Subscription.criteria may not use ${result[0]}: it selects resources, not a page of results`, expression: 'Subscription.criteria' };
  const channel = resource.channel ?? {};
  if (channel.type !== 'rest-hook') return { message: 'Only the rest-hook channel is supported', expression: 'Subscription.channel.type' };
  let url: URL | undefined;
  try {
    url = typeof channel.endpoint === 'string' ? new URL(channel.endpoint) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) {
    return { message: 'Subscription.channel.endpoint must be an absolute https URL without credentials (put them in channel.header)', expression: 'Subscription.channel.endpoint' };
  }
  if (channel.payload !== undefined && channel.payload !== 'application/fhir+json' && channel.payload !== 'application/json') {
    return { message: 'Subscription.channel.payload must be absent (id-only notification) or application/fhir+json', expression: 'Subscription.channel.payload' };
  }
  for (const line of channel.header ?? []) {
    if (!headerLine(line)) return { message: `Subscription.channel.header lines are "Name: value" (printable ASCII), got "${String(line).slice(0, 80)}"`, expression: 'Subscription.channel.header' };
  }
  return undefined;
}

/** Headers a subscriber may not set: they describe the request itself. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'expect', 'upgrade', 'te', 'trailer', 'keep-alive']);

/** A `Name: value` header line, or undefined when it is not one (or names a header the dispatcher sets). */
export function headerLine(line: unknown): [string, string] | undefined {
  if (typeof line !== 'string') return undefined;
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e]*)$/.exec(line);
  if (!m || RESERVED_HEADERS.has(m[1].toLowerCase())) return undefined;
  return [m[1], m[2].trim()];
}

/** Why an endpoint is refused by this deployment (http:// where only https is allowed), or undefined. */
export function endpointRefusal(endpoint: string, allowHttp: boolean): string | undefined {
  return endpoint.startsWith('http:') && !allowHttp ? 'http:// endpoints are refused on this server: notifications carry health data, use https://' : undefined;
}

const MAX_BACKOFF_MS = 3600_000;

/**
 * What to do after failed attempt number `attempts` (1 for the first): retry after an
 * exponential delay, or give up once `maxAttempts` have failed.
 */
export function afterFailure(attempts: number, maxAttempts: number, baseMs: number): { retryInMs: number } | { giveUp: true } {
  if (attempts >= maxAttempts) return { giveUp: true };
  return { retryInMs: Math.min(MAX_BACKOFF_MS, baseMs * 2 ** (attempts - 1)) };
}

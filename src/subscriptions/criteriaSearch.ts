import { FhirError } from '../errors';
import { parseRequestSearch } from '../interactions/search';
import type { InteractionContext } from '../interactions/types';
import type { Criteria } from './subscriptionRules';

/**
 * Why a Subscription's criteria are not a search this server runs, undefined when they are
 * (docs/decisions/010-subscriptions.md, amendment): parsed as the dispatcher parses them,
 * with the search engine under strict handling, so that criteria it could never match
 * (an unknown parameter, a malformed value) are refused when written, not kept active and silent.
 */
export function criteriaSearchRefusal(ctx: InteractionContext, criteria: Criteria): string | undefined {
  if (!ctx.registry.isSupported(criteria.resourceType)) return `Subscription.criteria searches ${criteria.resourceType}, a type this server does not serve`;
  try {
    parseRequestSearch(ctx, criteria.resourceType, criteria.query, true);
    return undefined;
  } catch (e) {
    if (!(e instanceof FhirError)) throw e;
    const why = e.issues.map((i) => i.diagnostics).filter(Boolean).join('; ');
    return `Subscription.criteria is not a search this server runs (as a search it is answered ${e.status}): ${why}`;
  }
}

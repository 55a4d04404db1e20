import { CONFORMANCE_TYPES } from '../interactions/conformanceResources';
import { perform, Route, WRITES } from '../interactions/dispatch';
import { transactionOrBatch } from '../interactions/transaction';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { inTransaction, withoutTransaction } from '../interactions/unitOfWork';
import type { StoreAccess } from '../store/session';

/**
 * The one way in: every HTTP request reaches the interactions through here, with what the
 * caller may see; Bundle entries are dispatched with the same session (and so the same
 * caller) by the transaction interaction (docs/decisions/008-access-model.md).
 */
export async function runRequest(ctx: InteractionContext, access: StoreAccess, r: Route, fhir: FhirRequest): Promise<FhirResponse> {
  if (r.interaction === 'transaction') return transactionOrBatch(ctx, access, fhir);
  // A plain create is one statement, atomic by itself; other writes lock and read first.
  const singleStatement = r.interaction === 'create' && !fhir.headers['if-none-exist'] && r.resourceType !== 'Binary' && !CONFORMANCE_TYPES.has(r.resourceType!);
  if (WRITES.has(r.interaction) && !singleStatement) return inTransaction(ctx, access, (s) => perform(ctx, s, r, fhir));
  return withoutTransaction(ctx, access, (s) => perform(ctx, s, r, fhir));
}

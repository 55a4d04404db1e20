import { auditFailure, auditInteraction } from '../audit/auditTrail';
import { CONFORMANCE_TYPES, knowProfiles, profilesNamed } from '../interactions/conformanceResources';
import { publishesInline } from '../interactions/documentSubmission';
import { perform, Route, WRITES } from '../interactions/dispatch';
import { EntryAuditor, transactionOrBatch } from '../interactions/transaction';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { inTransaction, withoutTransaction } from '../interactions/unitOfWork';
import { OPERATIONS } from '../operations/registry';
import type { Session, StoreAccess } from '../store/session';
import { referencesOf } from '../interactions/conditionalReferences';
import { identifierClaims } from '../integrity/uniqueIdentifiers';
import { markReceived } from '../dmp/messaging';

/** Whether a create's body has references to resolve (conditional ones included) or national identifiers to claim. */
function needsIntegrityChecks(body: unknown): boolean {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return false;
  const resource = body as Record<string, unknown>;
  return referencesOf(resource).length > 0 || identifierClaims(resource).length > 0;
}

/**
 * The one way in: every HTTP request reaches the interactions through here, with what the
 * caller may see; Bundle entries are dispatched with the same session (and so the same
 * caller) by the transaction interaction (docs/decisions/008-access-model.md). Every
 * interaction, and every Bundle entry, is audited here (docs/decisions/009-audit.md).
 */
export async function runRequest(ctx: InteractionContext, access: StoreAccess, r: Route, fhir: FhirRequest): Promise<FhirResponse> {
  try {
    // a profile committed through another worker is known here before the request uses it
    await knowProfiles(ctx, profilesNamed(fhir.body, fhir.query));
    return await runAudited(ctx, access, r, fhir);
  } catch (e) {
    // a refusal is audited on its own: the request's work rolled back, the refusal's trace must not
    if (!ctx.withoutAudit) await auditFailure(ctx, access, r, fhir, e);
    throw e;
  }
}

function auditorFor(ctx: InteractionContext, access: StoreAccess): EntryAuditor {
  // a server started without the audit trail (measurement only, src/server.ts) audits nothing
  const agent = ctx.withoutAudit ? undefined : access.auditAgent;
  return {
    performed: async (session, route, req) => (agent ? auditInteraction(ctx, session, agent, route, req) : undefined),
    failed: async (route, req, error) => (ctx.withoutAudit ? undefined : auditFailure(ctx, access, route, req, error)),
  };
}

/** An operation that changes data (POST $meta-add …) runs in a transaction with its events, like any write. */
function changesState(r: Route, fhir: FhirRequest): boolean {
  return r.interaction === 'operation' && fhir.method !== 'GET' && Boolean(OPERATIONS.find((o) => o.name === r.operation)?.affectsState);
}

/** A read of a message by id (GET: a HEAD shows nothing of it), which may write its read receipt. */
const receipts = (r: Route, fhir: FhirRequest) => r.interaction === 'read' && r.resourceType === 'Communication' && fhir.method === 'GET';

async function runAudited(ctx: InteractionContext, access: StoreAccess, r: Route, fhir: FhirRequest): Promise<FhirResponse> {
  const auditor = auditorFor(ctx, access);
  if (r.interaction === 'transaction') return transactionOrBatch(ctx, access, fhir, auditor);
  const audited = async (s: Session) => {
    let res = await perform(ctx, s, r, fhir);
    // a recipient's first read of a message is its read receipt, written with the read (decision 016)
    if (receipts(r, fhir)) res = await markReceived(ctx, s, res, r.id!);
    await auditor.performed(s, r, fhir);
    return res;
  };
  // A plain create is one statement, atomic by itself: its events go out in the same statement. Other writes lock and read
  // first, and so does a create whose references must resolve or whose national identifiers must stay unique
  // (docs/decisions/014-integrity.md), or that publishes inline content as a Binary of its own.
  const singleStatement =
    r.interaction === 'create' &&
    !fhir.headers['if-none-exist'] &&
    r.resourceType !== 'Binary' &&
    r.resourceType !== 'Communication' &&
    !CONFORMANCE_TYPES.has(r.resourceType!) &&
    !publishesInline(r.resourceType, fhir.body) &&
    !needsIntegrityChecks(fhir.body);
  if ((WRITES.has(r.interaction) || changesState(r, fhir) || receipts(r, fhir)) && !singleStatement) return inTransaction(ctx, access, audited, { deferWrites: true });
  // a read's events are written after its statements, and the answer leaves only once they are
  return withoutTransaction(ctx, access, audited, { deferWrites: true });
}

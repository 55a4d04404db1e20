import { Unprocessable } from '../errors';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { patch } from './patch';
import type { FhirRequest, InteractionContext } from './types';

const LOCAL_DOCUMENT = /^(?:.*\/)?DocumentReference\/([A-Za-z0-9\-.]{1,64})$/;

const refusal = (diagnostics: string, expression: string) => new Unprocessable([{ severity: 'error', code: 'processing', diagnostics, expression: [expression] }]);

/**
 * MHD replacement (PDSm / DMP TD2.1): a document published (ITI-105) or provided (ITI-65)
 * with `relatesTo` `replaces` makes the document it replaces `superseded`, in the same
 * transaction, unless the Provide Bundle changes that document itself (the PDSm example
 * carries a PATCH of its status, which then does it); the new version of
 * the replaced document is an update by the caller, under the same write checks. The
 * replaced document must be one the caller reads, current, and of the same record: a
 * hidden and an unknown document are refused alike.
 */
export async function supersedeReplaced(
  ctx: InteractionContext,
  session: Session,
  document: Record<string, unknown>,
  compartment: string,
  prefer: FhirRequest['prefer'],
  changedElsewhere: ReadonlySet<string> = new Set(),
): Promise<void> {
  const relations = Array.isArray(document.relatesTo) ? (document.relatesTo as { code?: unknown; target?: { reference?: unknown } }[]) : [];
  for (const [i, relation] of relations.entries()) {
    if (relation?.code !== 'replaces') continue;
    const expression = `DocumentReference.relatesTo[${i}].target`;
    const reference = typeof relation.target?.reference === 'string' ? relation.target.reference : '';
    const id = LOCAL_DOCUMENT.exec(reference)?.[1];
    if (!id) throw refusal('A replaced document is named as DocumentReference/{id} of this server', expression);
    const current = await readCurrent(session, 'DocumentReference', id, { forUpdate: true });
    if (!current || current.deleted) throw refusal(`The replaced document ${reference} is not a document you can read`, expression);
    // checked even when the Bundle supersedes the document itself: a submission replaces only its own record's documents
    if (current.compartment !== compartment) throw refusal(`The replaced document ${reference} belongs to another record`, expression);
    if (changedElsewhere.has(`DocumentReference/${id}`)) continue;
    const stored = JSON.parse(current.body!) as { status?: unknown };
    if (stored.status !== 'current') throw refusal(`The replaced document ${reference} is ${String(stored.status)}: only a current document is replaced`, expression);
    await patch(ctx, session, {
      method: 'PATCH',
      resourceType: 'DocumentReference',
      id,
      query: [],
      headers: {},
      body: [{ op: 'replace', path: '/status', value: 'superseded' }],
      prefer: { ...prefer, return: 'minimal' },
    });
  }
}

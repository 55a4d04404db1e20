import type { Actor } from '../actor';
import { representativeActs } from './decide';
import type { RecordFacts } from './recordFacts';
import { isOpen, type ClosureMode, type RecordState } from './recordState';

/**
 * Who may move a record from one state to another (docs/decisions/017-record-lifecycle.md).
 * Pure: the actor, the record's facts and the operation in, a decision out.
 */

export const LIFECYCLE_OPERATIONS = ['oppose', 'activate', 'close', 'reopen'] as const;
export type LifecycleOperation = (typeof LIFECYCLE_OPERATIONS)[number];

export type Transition =
  | { allow: true; to: RecordState | 'deleted' }
  | { allow: false; status: 403 | 404 | 409; reason: string };

const NOT_THEIRS = "A record's state is changed by the patient, their legal representative or an administrator";
const refuse = (status: 403 | 404 | 409, reason: string): Exclude<Transition, { allow: true }> => ({ allow: false, status, reason });

/** Who asks: the record's holder (themselves or through a representative acting now), an administrator, or nobody who may. */
function asker(actor: Actor, record: RecordFacts, now: number): 'holder' | 'admin' | 'legal-hold' | Transition {
  switch (actor.kind) {
    case 'admin':
      return actor.legalHold ? 'legal-hold' : 'admin';
    case 'patient':
      return actor.id === record.patientId ? 'holder' : refuse(404, `Patient/${record.patientId} is not known`);
    case 'related-person': {
      const self = `RelatedPerson/${actor.id}`;
      if (actor.patientId !== record.patientId || !(record.representatives ?? []).includes(self)) return refuse(404, `Patient/${record.patientId} is not known`);
      return representativeActs(record, self, now) ? 'holder' : refuse(403, `Patient/${record.patientId} is of age: their legal representatives no longer act for them`);
    }
    default:
      return refuse(403, NOT_THEIRS);
  }
}

/**
 * The answer for a Patient id that holds no record. A caller whose kind never changes a
 * record's state (a professional, a system) is refused as for an existing record: their
 * answer depends on who they are, never on what is stored, so the operations tell them no
 * more of a Patient than its read does (404 to a system, decision 035).
 */
export function unknownRecord(actor: Actor, patientId: string): Exclude<Transition, { allow: true }> {
  return actor.kind === 'admin' || actor.kind === 'patient' || actor.kind === 'related-person'
    ? refuse(404, `Patient/${patientId} is not known`)
    : refuse(403, NOT_THEIRS);
}

/** May `actor` run `operation` (with `mode` for $close) on this record now, and to which state? */
export function decideTransition(actor: Actor, record: RecordFacts, operation: LifecycleOperation, mode: ClosureMode | undefined, now: number): Transition {
  const who = asker(actor, record, now);
  if (typeof who !== 'string') return who;
  const from = record.state;
  const openNow = isOpen(from);
  // once the record is opposed or closed the holder acts through the operator, but for withdrawing their own opposition
  if (who === 'holder' && !openNow && !(operation === 'reopen' && from === 'opposed')) return refuse(403, `The record of Patient/${record.patientId} is ${from}: ask the operator (an administrator) to act on it`);
  switch (operation) {
    case 'oppose':
      return from === 'open' ? { allow: true, to: 'opposed' } : refuse(409, `Only a record not yet activated is opposed; this one is ${from}${openNow ? ': close it instead' : ''}`);
    case 'activate':
      return from === 'open' ? { allow: true, to: 'activated' } : refuse(409, `Only an open record is activated; this one is ${from}`);
    case 'close':
      if (mode === 'archive') return openNow ? { allow: true, to: 'closed' } : refuse(409, `The record is already ${from}`);
      if (openNow) return { allow: true, to: 'deleted' };
      // an opposed or archived record is reached by the legal-hold role alone
      return who === 'legal-hold' ? { allow: true, to: 'deleted' } : refuse(403, `Deleting an ${from} record is an action of an administrator holding the legal-hold role`);
    case 'reopen':
      if (from === 'opposed') return { allow: true, to: 'open' };
      if (from === 'closed') return who === 'legal-hold' ? { allow: true, to: 'open' } : refuse(403, 'Restoring an archived record is an action of an administrator holding the legal-hold role');
      return refuse(409, `The record is ${from}: there is nothing to reopen`);
  }
}

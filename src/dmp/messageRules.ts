import type { Actor } from '../access/actor';
import { targetOf } from '../access/referenceRedaction';

/**
 * The rules of the secure messaging (docs/decisions/016-messaging.md): who opens, replies,
 * closes and deletes their copy of a conversation. Pure: the thread's facts come in, a
 * decision comes out; src/dmp/messaging.ts reads the facts and writes what follows.
 */

type Json = Record<string, any>;

/** A thread as stored: its record, whether it is closed, who takes part and whose copy is deleted. */
export interface ThreadFacts {
  id: string;
  compartment: string;
  closed: boolean;
  participants: { reference: string; removed: boolean }[];
  /** The ids of its messages (the opening included). */
  messages: string[];
}

export type MessageDecision =
  | { allow: true; opening: boolean; thread: string; participants: string[] }
  | { allow: false; status: 403 | 409 | 422; reason: string };

const refused = (status: 403 | 409 | 422, reason: string): MessageDecision => ({ allow: false, status, reason });

/** Who the caller is when matched against participants, senders and recipients. */
export function identitiesOf(actor: Actor): string[] {
  switch (actor.kind) {
    case 'practitioner':
      return [`Practitioner/${actor.id}`, ...actor.roles.map((r) => `PractitionerRole/${r.roleId}`), ...new Set(actor.roles.map((r) => r.organization).filter((o): o is string => Boolean(o)))];
    case 'device':
      return [`Device/${actor.id}`, ...(actor.organization ? [actor.organization] : [])];
    case 'patient':
      return [`Patient/${actor.id}`];
    case 'related-person':
      return [`RelatedPerson/${actor.id}`, `Patient/${actor.patientId}`];
    case 'admin':
      return [];
  }
}

const isPatientSide = (actor: Actor) => actor.kind === 'patient' || actor.kind === 'related-person';
const isProfessional = (actor: Actor) => actor.kind === 'practitioner' || actor.kind === 'device';
const PROFESSIONAL_TYPES = ['Practitioner', 'PractitionerRole', 'Organization', 'Device'];

const local = (reference: unknown, baseUrl: string): string | undefined => {
  const t = targetOf(reference, baseUrl);
  return t ? `${t.resourceType}/${t.id}` : undefined;
};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/** The thread a message names in `partOf` (undefined: an opening), or why it names none well. */
export function threadNamed(message: Json, baseUrl: string): { thread?: string; problem?: string } {
  const partOf = list(message.partOf);
  if (partOf.length === 0) return {};
  const named = partOf.map((r) => local(r, baseUrl));
  if (partOf.length > 1 || !named[0]?.startsWith('Communication/')) return { problem: 'A reply names its conversation in partOf: exactly one reference Communication/[id] to the opening message' };
  return { thread: named[0].slice('Communication/'.length) };
}

/** The Binaries a message carries (`payload.contentAttachment.url`), and whether any attachment is inline or elsewhere. */
export function attachmentsOf(message: Json, baseUrl: string): { binaries: string[]; problem?: string } {
  const binaries: string[] = [];
  for (const p of list(message.payload) as Json[]) {
    const a = p?.contentAttachment;
    if (!a) continue;
    if (a.data !== undefined) return { binaries, problem: 'A message carries its attachments as Binary resources: POST the Binary, then name it in payload.contentAttachment.url' };
    const target = local({ reference: a.url }, baseUrl);
    if (!target?.startsWith('Binary/')) return { binaries, problem: 'payload.contentAttachment.url must name a Binary of this server (Binary/[id])' };
    binaries.push(target.slice('Binary/'.length));
  }
  return { binaries };
}

/** The participants an opening message makes: its sender, its recipients, and a Device sender's organisation. */
export function participantsOfOpening(message: Json, baseUrl: string, actor: Actor): string[] {
  const out = new Set<string>();
  const sender = local(message.sender, baseUrl);
  if (sender) out.add(sender);
  if (actor.kind === 'device' && actor.organization && sender === `Device/${actor.id}`) out.add(actor.organization);
  for (const r of list(message.recipient)) {
    const target = local(r, baseUrl);
    if (target) out.add(target);
  }
  return [...out];
}

/**
 * May this caller post this message? `thread`: the facts of the thread its `partOf` names
 * (undefined for an opening, or when no such thread is stored in the record).
 * `compartment`: the patient record the message is written in. `named`: its `threadNamed`,
 * when the caller has it already.
 */
export function decideMessage(actor: Actor, message: Json, compartment: string, thread: ThreadFacts | undefined, baseUrl: string, named = threadNamed(message, baseUrl)): MessageDecision {
  const mine = identitiesOf(actor);
  const sender = local(message.sender, baseUrl);
  const subject = local(message.subject, baseUrl);
  const recipients = list(message.recipient).map((r) => local(r, baseUrl));
  if (!compartment || subject !== `Patient/${compartment}`) return refused(422, 'A message belongs to one patient record: subject must name the Patient');
  if (!sender || !mine.includes(sender)) return refused(403, `A message is sent in the caller's own name: sender must be one of ${mine.join(', ') || '(none)'}`);
  if (recipients.length === 0 || recipients.some((r) => r === undefined)) return refused(422, 'A message names its recipients (references to resources of this server)');
  // the read receipt is the server's, written when the recipient first reads (decision 016)
  if (message.received !== undefined) return refused(422, 'received is the read receipt the server sets when the recipient first reads the message: a sender does not set it');
  if (named.problem) return refused(isPatientSide(actor) ? 403 : 422, named.problem);
  if (named.thread === undefined) {
    // only professionals start a conversation (reference §2)
    if (isPatientSide(actor)) return refused(403, 'A patient or their legal representative does not start a conversation: they answer inside an open conversation they take part in (partOf)');
    if (!isProfessional(actor)) return refused(403, 'Only professionals start a conversation with a patient');
    if (actor.kind === 'practitioner' && actor.roles.length === 0) return refused(403, 'A practitioner starts a conversation in one of their roles (PractitionerRole): none is active');
    if (message.status !== 'in-progress') return refused(422, 'The opening message of a conversation has status in-progress (the conversation is open)');
    if (!recipients.includes(`Patient/${compartment}`)) return refused(422, `The opening message is addressed to the patient: recipient must name Patient/${compartment}`);
    const stranger = recipients.find((r) => r !== `Patient/${compartment}` && !PROFESSIONAL_TYPES.includes(r!.split('/')[0]));
    if (stranger) return refused(422, `Besides the patient, a conversation is between professionals: ${stranger} cannot be a recipient`);
    if (list(message.inResponseTo).length) return refused(422, 'An opening message answers nothing: inResponseTo is for replies');
    return { allow: true, opening: true, thread: '', participants: participantsOfOpening(message, baseUrl, actor) };
  }
  // a thread unknown, hidden or of another record is refused alike: a write tells no more than a read
  const active = thread && thread.compartment === compartment ? thread.participants.filter((p) => !p.removed).map((p) => p.reference) : [];
  if (!thread || thread.compartment !== compartment || !mine.some((m) => active.includes(m))) {
    return refused(403, isPatientSide(actor) ? 'A patient answers only inside a conversation they take part in: partOf names none' : 'The caller takes no part in the conversation partOf names');
  }
  if (thread.closed) return refused(409, `The conversation Communication/${thread.id} is closed: nobody posts in it any more`);
  const strangers = recipients.filter((r) => !active.includes(r!) || mine.includes(r!));
  if (strangers.length) return refused(403, `A reply goes to the other participants of the conversation only: ${strangers.join(', ')} is not one`);
  if (message.status !== 'completed') return refused(422, 'A reply has status completed (sent)');
  const answered = list(message.inResponseTo).map((r) => local(r, baseUrl));
  if (answered.some((a) => !a?.startsWith('Communication/') || !thread.messages.includes(a.slice('Communication/'.length)))) {
    return refused(422, 'inResponseTo names messages of the same conversation');
  }
  return { allow: true, opening: false, thread: thread.id, participants: [] };
}

export type ThreadDecision = { allow: true } | { allow: false; status: 403 | 404 | 409; reason: string };

/** Whether the caller takes part in the thread (their copy not deleted). */
export function takesPart(actor: Actor, thread: ThreadFacts): boolean {
  const mine = identitiesOf(actor);
  return thread.participants.some((p) => !p.removed && mine.includes(p.reference));
}

/** $close: a professional taking part (or their organisation), once. */
export function decideClose(actor: Actor, thread: ThreadFacts): ThreadDecision {
  if (!isProfessional(actor)) return { allow: false, status: 403, reason: 'A conversation is closed by the professional who takes part in it, or their organisation' };
  const mine = identitiesOf(actor);
  if (!thread.participants.some((p) => mine.includes(p.reference) && !p.reference.startsWith('Patient/'))) return { allow: false, status: 403, reason: 'The caller takes no part in this conversation' };
  if (thread.closed) return { allow: false, status: 409, reason: `The conversation Communication/${thread.id} is already closed` };
  return { allow: true };
}

/** $delete-copy: the patient (or their representative) removes the conversation from their side. */
export function decideDeleteCopy(actor: Actor, thread: ThreadFacts): ThreadDecision {
  if (actor.kind !== 'patient' && actor.kind !== 'related-person') return { allow: false, status: 403, reason: "Only the patient or their legal representative deletes the patient's copy of a conversation; the professionals' copy stays" };
  const patient = `Patient/${actor.kind === 'patient' ? actor.id : actor.patientId}`;
  if (thread.compartment !== patient.slice('Patient/'.length) || !thread.participants.some((p) => p.reference === patient && !p.removed)) return { allow: false, status: 404, reason: 'not known' };
  return { allow: true };
}

/** $delete-copy of one message: the patient's side deletes the messages it sent itself, one by one. */
export function decideDeleteMessageCopy(actor: Actor, thread: ThreadFacts, message: Json, baseUrl: string): ThreadDecision {
  const conversation = decideDeleteCopy(actor, thread);
  if (!conversation.allow) return conversation;
  const sender = local(message.sender, baseUrl);
  if (!sender || !identitiesOf(actor).includes(sender)) {
    return { allow: false, status: 403, reason: "The patient deletes one by one only the messages they sent; a professional's message leaves their side with the whole conversation (scope conversation)" };
  }
  return { allow: true };
}

/** Whether the caller is among the message's recipients (their first read sets `received`). */
export function isRecipient(actor: Actor, message: Json, baseUrl: string): boolean {
  const mine = identitiesOf(actor);
  return list(message.recipient).some((r) => {
    const target = local(r, baseUrl);
    return target !== undefined && mine.includes(target);
  });
}


import { SERVER_DEVICE } from '../audit/notification';
import type { Actor } from '../access/actor';
import { BadRequest, Conflict, Forbidden, NotFound, Unprocessable } from '../errors';
import { heldRecordState, unopenRecordRefusal } from '../store/recordLock';
import { assertId, newVersion, nowInstant } from '../interactions/common';
import { create } from '../interactions/create';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { withinTransaction } from '../interactions/unitOfWork';
import { operationInputs } from '../operations/parameters';
import { referencedId } from '../referenceString';
import { readBinaryContent, readWholeContent } from '../store/binaryContent';
import { attachmentFacts, closeThread, isAttachment, readThread, recordMessage, recordThread, removeCopy, removeMessageCopy, threadOfMessage } from '../store/messageThreads';
import { CurrentRow, readCurrent } from '../store/resources';
import { INTERNAL_ACCESS, Session } from '../store/session';
import type { VersionWrite } from '../store/writeVersions';
import { attachmentsOf, decideClose, decideDeleteCopy, decideDeleteMessageCopy, decideMessage, identitiesOf, isRecipient, threadNamed, ThreadFacts } from './messageRules';

/**
 * The secure messaging flows (docs/decisions/016-messaging.md): admitting a message (its
 * thread, its attachments), closing a conversation, deleting the patient's copy, filing an
 * attachment into the record, the read receipt. The rules are src/dmp/messageRules.ts.
 */

type Json = Record<string, any>;

export interface MessagingSetup {
  baseUrl(): string;
  attachmentMaxBytes: number;
}

const failure = (status: 403 | 404 | 409 | 422, reason: string, expression?: string) => {
  if (status === 403) return new Forbidden(reason);
  if (status === 404) return new NotFound(reason);
  if (status === 409) return new Conflict(reason);
  return new Unprocessable([{ severity: 'error', code: 'business-rule', diagnostics: reason, ...(expression ? { expression: [expression] } : {}) }]);
};

/**
 * Called for every Communication an actor writes (src/pipeline/authorize.ts), after the
 * record policy allowed it: decides it as a message and records its thread, in the
 * write's transaction. Changes of a stored message are refused by the policy before.
 */
export async function admitMessage(session: Session, actor: Actor, w: VersionWrite, setup: MessagingSetup): Promise<void> {
  const message = w.body as Json;
  const baseUrl = setup.baseUrl();
  const named = threadNamed(message, baseUrl);
  const thread = named.thread && w.compartment ? await readThread(session, w.compartment, named.thread, { lock: true }) : undefined;
  const decision = decideMessage(actor, message, w.compartment, thread, baseUrl, named);
  if (!decision.allow) throw failure(decision.status, decision.reason);
  const { binaries, problem } = attachmentsOf(message, baseUrl);
  if (problem) throw failure(422, problem, 'Communication.payload.content');
  const threadId = decision.opening ? w.id : decision.thread;
  for (const id of binaries) await checkAttachment(session, actor, w.compartment, threadId, id, setup);
  if (decision.opening) await recordThread(session, w.compartment, w.id, decision.participants);
  await recordMessage(session, w.compartment, w.id, threadId, binaries);
}

/** A Binary a message carries is part of what was said: nobody rewrites or deletes it (decision 016). */
export async function checkAttachmentChange(session: Session, w: VersionWrite): Promise<void> {
  if (w.previousCompartment !== undefined && (await isAttachment(session, w.previousCompartment, w.id))) {
    throw new Forbidden(`Binary/${w.id} is an attachment of a message: a message is sent once, its attachments are not changed or deleted`);
  }
}

/** An attachment: a Binary of the record the sender may read, within the size limit, no document's content nor another conversation's. */
async function checkAttachment(session: Session, actor: Actor, compartment: string, threadId: string, id: string, setup: MessagingSetup): Promise<void> {
  // a system reads no Binary but its conversations': the one it just deposited for this message is looked up as the server
  const reader = actor.kind === 'device' ? new Session(session.db, INTERNAL_ACCESS) : session;
  const binary = await readCurrent(reader, 'Binary', id, { withBody: false });
  if (!binary || binary.deleted || binary.compartment !== compartment) throw failure(422, `payload.contentAttachment.url names Binary/${id}, which is not a Binary of this record the sender can read`, 'Communication.payload.content');
  const facts = await attachmentFacts(session, compartment, id, binary.versionId);
  if (facts.size > setup.attachmentMaxBytes) throw failure(422, `Binary/${id} (${facts.size} bytes) exceeds the attachment limit of ${setup.attachmentMaxBytes} bytes`, 'Communication.payload.content');
  if (facts.document || facts.threads.some((t) => t !== threadId)) throw failure(422, `Binary/${id} is already the content of a document or of another conversation: attach a Binary of its own`, 'Communication.payload.content');
}

function callerOf(session: Session): Actor {
  const actor = session.access.actor;
  if (!actor || actor.kind === 'admin') throw new Forbidden('The messaging operations act for a participant of the conversation (a professional, the patient or their legal representative)');
  return actor;
}

/** The message [id] as the caller reads it (404 when hidden), and its thread's facts. */
async function messageAndThread(session: Session, req: FhirRequest, lock: boolean): Promise<{ id: string; row: CurrentRow; thread: ThreadFacts }> {
  const id = assertId(req.id);
  const row = await readCurrent(session, 'Communication', id, { forUpdate: lock });
  if (!row) throw new NotFound(`Communication/${id} is not known`);
  if (row.deleted) throw new NotFound(`Communication/${id} is not known`);
  // a change (the lock taken the record's first): refused if a lifecycle operation closed the record since the policy read it
  if (lock) await refuseUnlessOpen(session, row.compartment, id);
  const threadId = await threadOfMessage(session, row.compartment, id);
  if (!threadId) throw new BadRequest(`Communication/${id} is not a message of a conversation`, 'not-supported');
  const thread = await readThread(session, row.compartment, threadId, { lock });
  return { id, row, thread: thread! };
}

/**
 * Writes a new version of a message as the server (not as the caller, who may not change
 * a message): the closing of a thread, the read receipt. Flushed with the session's writes
 * in its transaction, and named in its audit trail.
 */
async function rewriteMessage(ctx: InteractionContext, session: Session, id: string, change: (m: Json) => Json): Promise<VersionWrite> {
  await session.flush();
  const server = new Session(session.db, INTERNAL_ACCESS);
  const current = await readCurrent(server, 'Communication', id, { forUpdate: true });
  if (!current || current.deleted) throw new NotFound(`Communication/${id} is not known`);
  await refuseUnlessOpen(server, current.compartment, id);
  const body = JSON.parse(current.body!) as Json;
  const version = newVersion(ctx, change(body), { id, versionId: current.versionId + 1, lastUpdated: nowInstant(), method: 'PATCH', previousCompartment: current.compartment, previousBody: body });
  await server.write([version]);
  session.touch([{ compartment: version.compartment, resourceType: 'Communication', id, versionId: version.versionId, written: 'PATCH' }]);
  return version;
}

/** POST Communication/[id]/$close: the professional taking part closes the conversation; the opening becomes completed. */
export async function closeConversation(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const actor = callerOf(session);
  operationInput(req, 'close');
  return withinTransaction(ctx, session, async (s) => {
    const { thread } = await messageAndThread(s, req, true);
    const decision = decideClose(actor, thread);
    if (!decision.allow) throw failure(decision.status, decision.reason);
    await closeThread(s, thread.compartment, thread.id, identitiesOf(actor)[0]);
    const version = await rewriteMessage(ctx, s, thread.id, (m) => ({ ...m, status: 'completed' }));
    return { status: 200, resource: version.body as Json, resourceText: version.bodyText!, location: `Communication/${thread.id}/_history/${version.versionId}`, versionId: version.versionId, lastModified: new Date(version.lastUpdated) };
  });
}

/**
 * A message changed by the server for the caller (not through the policy's checks) is
 * changed in an open record only: its state read under the record's share lock, which the
 * caller's locking read took first (docs/decisions/017-record-lifecycle.md, amendment of
 * 2026-12-06), so a `$close` committed since the policy decided is seen here.
 */
async function refuseUnlessOpen(session: Session, compartment: string, id: string): Promise<void> {
  if (!compartment) return;
  const state = await heldRecordState(session, compartment);
  if (state === undefined) throw new NotFound(`Communication/${id} is not known`);
  const refusal = unopenRecordRefusal(state, `The record is ${state}: nothing is written in it`);
  if (refusal) throw refusal;
}

const outcome = (text: string): FhirResponse => ({ status: 200, resource: { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics: text }] } });

/**
 * POST Communication/[id]/$delete-copy: the conversation (scope `conversation`, the
 * default) or the message [id] the patient's side sent (scope `message`) leaves the
 * patient's side; the professionals keep theirs.
 */
export async function deleteCopy(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const actor = callerOf(session);
  const scope: unknown = operationInput(req, 'delete-copy', { scope: 'code' }).find(([n]) => n === 'scope')?.[1] ?? 'conversation';
  if (scope !== 'conversation' && scope !== 'message') throw new BadRequest('scope is conversation (the whole conversation) or message (this message, sent by the patient)', 'value');
  return withinTransaction(ctx, session, async (s) => {
    const { id, row, thread } = await messageAndThread(s, req, true);
    const decision = scope === 'message' ? decideDeleteMessageCopy(actor, thread, JSON.parse(row.body!) as Json, ctx.config.baseUrl) : decideDeleteCopy(actor, thread);
    if (!decision.allow) throw failure(decision.status, decision.status === 404 ? `Communication/${req.id} is not known` : decision.reason);
    if (scope === 'message') {
      await removeMessageCopy(s, thread.compartment, id);
      return outcome(`The message Communication/${id} was deleted from the patient's side; the professionals' copy stays`);
    }
    await removeCopy(s, thread.compartment, thread.id, `Patient/${thread.compartment}`);
    return outcome(`The conversation Communication/${thread.id} was deleted from the patient's side; the professionals' copy stays`);
  });
}

type ParameterKind = 'code' | 'integer' | 'string' | 'complex';

/**
 * The operation's input parameters, from the URL (primitive ones) and a Parameters body. A
 * parameter the operation does not define is refused: an operation that deletes must not
 * fall back to its default because it did not read what the client said.
 */
function operationInput(req: FhirRequest, operation: string, accepted: Record<string, ParameterKind> = {}): [string, unknown][] {
  const body = req.body as Json | undefined;
  if (body !== undefined && body?.resourceType !== 'Parameters') throw new BadRequest(`$${operation} takes a Parameters resource`, 'structure');
  const input = operationInputs(req).map(([name, value]): [string, unknown] => {
    if (typeof value !== 'string') return [name, value];
    // a URL carries text: an integer as its digits, and nothing complex
    if (accepted[name] === 'complex') throw new BadRequest(`$${operation}: ${name} goes in a Parameters body`, 'structure');
    return [name, accepted[name] === 'integer' && /^\d+$/.test(value) ? Number(value) : value];
  });
  const unknown = [...new Set(input.map(([name]) => name).filter((name) => !Object.hasOwn(accepted, name)))];
  if (unknown.length) throw new BadRequest(`$${operation} has no parameter ${unknown.map((n) => JSON.stringify(n)).join(', ')}`, 'not-supported');
  return input;
}

const codingOf = (p: [string, unknown] | undefined) => (p ? (p[1] as Json) : undefined);

/**
 * POST Communication/[id]/$file-to-record: an attachment of the message becomes a document
 * of the record, authored by the caller (a professional filing it, or the patient saving
 * it): a copy of its bytes as a Binary of its own and a DocumentReference, both created as
 * any deposit is, so the habilitation matrix, the labels, the notices and the audit apply.
 */
export async function fileToRecord(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const actor = callerOf(session);
  const input = operationInput(req, 'file-to-record', { attachment: 'integer', type: 'complex', category: 'complex', description: 'string', security: 'complex' });
  const index = input.find(([n]) => n === 'attachment')?.[1] ?? 0;
  const type = codingOf(input.find(([n]) => n === 'type'));
  const category = codingOf(input.find(([n]) => n === 'category'));
  const description = input.find(([n]) => n === 'description')?.[1];
  const security = input.filter(([n]) => n === 'security').map(([, v]) => v as Json);
  if (!Number.isInteger(index) || (index as number) < 0) throw new BadRequest('attachment is the index (0, 1, …) of an attachment of the message', 'value');
  if (!type?.code) throw new BadRequest('$file-to-record needs the document type: a type parameter (valueCoding)', 'required');
  return withinTransaction(ctx, session, async (s) => {
    const { id, row } = await messageAndThread(s, req, false);
    const message = JSON.parse(row.body!) as Json;
    const { binaries } = attachmentsOf(message, ctx.config.baseUrl);
    const binaryId = binaries[index as number];
    if (binaryId === undefined) throw new Unprocessable([{ severity: 'error', code: 'value', diagnostics: `Communication/${id} has no attachment ${index}` }]);
    const binary = await readCurrent(s, 'Binary', binaryId);
    if (!binary || binary.deleted) throw new NotFound(`Binary/${binaryId} is not known`);
    const stored = await readBinaryContent(s, binary.compartment, binaryId, binary.versionId);
    // an attachment is size-limited (MESSAGE_ATTACHMENT_MAX_BYTES): copied whole
    const content = stored && { contentType: stored.contentType, data: await readWholeContent(stored) };
    const post = (body: Json): FhirRequest => ({ method: 'POST', resourceType: body.resourceType, query: [], headers: {}, body, prefer: { return: 'representation' } });
    const copy = await create(ctx, s, post({ resourceType: 'Binary', contentType: content?.contentType ?? 'application/octet-stream', securityContext: { reference: `Patient/${row.compartment}` }, data: (content?.data ?? Buffer.alloc(0)).toString('base64') }));
    const copyId = (copy.resource as Json).id as string;
    const attachment = (message.payload as Json[]).map((p) => p.contentAttachment).filter(Boolean)[index as number] as Json;
    const document: Json = {
      resourceType: 'DocumentReference',
      status: 'current',
      ...(security.length ? { meta: { security } } : {}),
      type: { coding: [type] },
      ...(category ? { category: [{ coding: [category] }] } : {}),
      subject: { reference: `Patient/${row.compartment}` },
      date: nowInstant(),
      author: [{ reference: identitiesOf(actor)[0] }],
      ...(typeof description === 'string' ? { description } : attachment.title ? { description: attachment.title } : {}),
      content: [{ attachment: { contentType: content?.contentType ?? attachment.contentType, url: `Binary/${copyId}`, ...(attachment.title ? { title: attachment.title } : {}), size: content?.data.length ?? 0 } }],
      context: { related: [{ reference: `Communication/${id}` }] },
    };
    const created = await create(ctx, s, { ...post(document), prefer: req.prefer });
    return { ...created, status: 201 };
  });
}

/**
 * The read receipt: a recipient's first read of a message by id sets `received`, in the
 * read's transaction, and is answered with that version. Anything else answers as read.
 */
export async function markReceived(ctx: InteractionContext, session: Session, res: FhirResponse, id: string): Promise<FhirResponse> {
  const actor = session.access.actor;
  if (!actor || actor.kind === 'admin' || res.status !== 200 || !res.resourceText) return res;
  const message = JSON.parse(res.resourceText) as Json;
  // the server's notices are no messages: no receipt, no thread to look up
  if (message.received || message.sender?.reference === SERVER_DEVICE || !isRecipient(actor, message, ctx.config.baseUrl)) return res;
  const compartment = referencedId(String(message.subject?.reference ?? ''), 'Patient');
  if (compartment === undefined || !(await threadOfMessage(session, compartment, id))) return res;
  const version = await rewriteMessage(ctx, session, id, (m) => ({ ...m, received: nowInstant() }));
  return { ...res, resourceText: version.bodyText!, location: `Communication/${id}/_history/${version.versionId}`, versionId: version.versionId, lastModified: new Date(version.lastUpdated) };
}

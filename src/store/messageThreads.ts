import type { ThreadFacts } from '../dmp/messageRules';
import type { Session } from './session';
import { namesBinary, textArray } from './searchSql';

/**
 * The side tables of the secure messaging (docs/decisions/016-messaging.md, migration
 * 009): threads, their participants, which thread each message belongs to, the Binaries
 * messages carry. Written in the transaction of the message or operation they follow.
 */

/** A thread of a record, with its participants and messages; undefined when the record holds no such thread. */
export async function readThread(session: Session, compartment: string, threadId: string, { lock = false } = {}): Promise<ThreadFacts | undefined> {
  const rows = await session.query<{ closed_at: unknown }>(`SELECT closed_at FROM message_thread WHERE compartment = ? AND thread_id = ?${lock ? ' FOR UPDATE' : ''}`, [compartment, threadId]);
  if (!rows[0]) return undefined;
  const participants = await session.query<{ participant: string; removed_at: unknown }>(
    `SELECT participant, removed_at FROM message_participant WHERE compartment = ? AND thread_id = ? ORDER BY participant`,
    [compartment, threadId],
  );
  const messages = await session.query<{ id: string }>(`SELECT id FROM message WHERE compartment = ? AND thread_id = ?`, [compartment, threadId]);
  return {
    id: threadId,
    compartment,
    closed: rows[0].closed_at !== null,
    participants: participants.map((p) => ({ reference: p.participant, removed: p.removed_at !== null })),
    messages: messages.map((m) => m.id),
  };
}

/** The thread a stored message belongs to, if it is a message. */
export async function threadOfMessage(session: Session, compartment: string, messageId: string): Promise<string | undefined> {
  const rows = await session.query<{ thread_id: string }>(`SELECT thread_id FROM message WHERE compartment = ? AND id = ?`, [compartment, messageId]);
  return rows[0]?.thread_id;
}

/**
 * Whether a Binary is carried by a message (it is then the conversation's, never rewritten).
 * Message attachments are written at once (`recordMessage`), never queued with a Bundle's
 * resource writes: the queued writes need not be sent before this look-up.
 */
export async function isAttachment(session: Session, compartment: string, binaryId: string): Promise<boolean> {
  return (await attachmentsAmong(session, compartment, [binaryId])).size > 0;
}

/** Which of these Binaries of the record are a message's attachment, in one statement. */
export async function attachmentsAmong(session: Session, compartment: string, binaryIds: string[]): Promise<Set<string>> {
  if (binaryIds.length === 0) return new Set();
  const rows = await session.queryApart<{ binary_id: string }>(
    `SELECT DISTINCT binary_id FROM message_attachment WHERE compartment = ? AND binary_id = ANY(?::text[])`,
    [compartment, textArray(binaryIds)],
  );
  return new Set(rows.map((r) => r.binary_id));
}

/**
 * In one statement: the record each of `candidates` (Binary ids) is filed in, and which of
 * `attachmentIds` are a message's attachment in `compartment`. After the queued writes: a
 * Binary written earlier in the same transaction is found.
 */
export async function contentPlaces(session: Session, compartment: string, attachmentIds: string[], candidates: string[]): Promise<{ located: Map<string, string>; attachments: Set<string> }> {
  if (attachmentIds.length === 0 && candidates.length === 0) return { located: new Map(), attachments: new Set() };
  const rows = await session.query<{ part: string; id: string; compartment: string | null }>(
    `SELECT 'located' AS part, l.id, l.compartment FROM resource_locator l WHERE l.resource_type = 'Binary' AND l.id = ANY(?::text[])
     UNION ALL
     SELECT DISTINCT 'attachment', a.binary_id, NULL FROM message_attachment a WHERE a.compartment = ? AND a.binary_id = ANY(?::text[])`,
    [textArray(candidates), compartment, textArray(attachmentIds)],
    'content_places',
  );
  return {
    located: new Map(rows.filter((r) => r.part === 'located').map((r) => [r.id, String(r.compartment)])),
    attachments: new Set(rows.filter((r) => r.part === 'attachment').map((r) => r.id)),
  };
}

/**
 * Which of these Binaries of the record another document of it names (its `location`, or the
 * version a deleted one deleted), other than `documentId`: a Binary is the content of one
 * document (decision 008, fourth amendment). Matched as the read rule matches (namesBinary).
 */
export async function contentOfOtherDocuments(session: Session, compartment: string, documentId: string, binaryIds: string[]): Promise<Set<string>> {
  if (binaryIds.length === 0) return new Set();
  const rows = await session.query<{ id: string }>(
    `SELECT b.id FROM unnest(?::text[]) AS b(id)
      WHERE EXISTS (SELECT 1 FROM idx_uri u WHERE u.compartment = ? AND u.resource_type = 'DocumentReference' AND u.param = 'location' AND u.resource_id <> ? AND ${namesBinary('u.value', 'b.id')})
         OR EXISTS (SELECT 1 FROM resource d JOIN resource_history h ON h.compartment = d.compartment AND h.resource_type = d.resource_type AND h.id = d.id AND h.version_id = d.version_id - 1
                      CROSS JOIN LATERAL jsonb_array_elements(COALESCE(h.body::jsonb -> 'content', '[]'::jsonb)) c
                     WHERE d.compartment = ? AND d.resource_type = 'DocumentReference' AND d.deleted AND d.id <> ? AND ${namesBinary(`(c -> 'attachment' ->> 'url')`, 'b.id')})`,
    [textArray(binaryIds), compartment, documentId, compartment, documentId],
    'content_of_other_documents',
  );
  return new Set(rows.map((r) => r.id));
}

export async function recordThread(session: Session, compartment: string, threadId: string, participants: string[]): Promise<void> {
  await session.query(`INSERT INTO message_thread (compartment, thread_id) VALUES (?, ?)`, [compartment, threadId]);
  for (const p of participants) await session.query(`INSERT INTO message_participant (compartment, thread_id, participant) VALUES (?, ?, ?)`, [compartment, threadId, p]);
}

export async function recordMessage(session: Session, compartment: string, id: string, threadId: string, binaries: string[]): Promise<void> {
  await session.query(`INSERT INTO message (compartment, id, thread_id) VALUES (?, ?, ?)`, [compartment, id, threadId]);
  for (const b of new Set(binaries)) await session.query(`INSERT INTO message_attachment (compartment, message_id, binary_id) VALUES (?, ?, ?)`, [compartment, id, b]);
}

export async function closeThread(session: Session, compartment: string, threadId: string, by: string): Promise<void> {
  await session.query(`UPDATE message_thread SET closed_at = now(), closed_by = ? WHERE compartment = ? AND thread_id = ?`, [by, compartment, threadId]);
}

/** The patient's copy deleted: the patient's participant row no longer lets them (or their representatives) see the thread. */
export async function removeCopy(session: Session, compartment: string, threadId: string, participant: string): Promise<void> {
  await session.query(`UPDATE message_participant SET removed_at = now() WHERE compartment = ? AND thread_id = ? AND participant = ? AND removed_at IS NULL`, [compartment, threadId, participant]);
}

/** One message deleted from the patient's side: hidden from the patient and their representatives, kept for the professionals. */
export async function removeMessageCopy(session: Session, compartment: string, id: string): Promise<void> {
  await session.query(`UPDATE message SET patient_removed_at = now() WHERE compartment = ? AND id = ? AND patient_removed_at IS NULL`, [compartment, id]);
}

/** What an attachment is already: the threads whose messages carry it, whether a document points to it, the size of this version. */
export async function attachmentFacts(session: Session, compartment: string, binaryId: string, versionId: number): Promise<{ threads: string[]; document: boolean; size: number }> {
  const threads = await session.query<{ thread_id: string }>(
    `SELECT DISTINCT m.thread_id FROM message_attachment a JOIN message m ON m.compartment = a.compartment AND m.id = a.message_id WHERE a.compartment = ? AND a.binary_id = ?`,
    [compartment, binaryId],
  );
  const documents = await session.query(
    // every form the read rule matches (searchSql's namesBinary)
    `SELECT 1 FROM idx_uri u WHERE u.compartment = ? AND u.resource_type = 'DocumentReference' AND u.param = 'location' AND ${namesBinary('u.value', '?::text')} LIMIT 1`,
    [compartment, binaryId, binaryId, binaryId, binaryId],
  );
  const sizes = await session.query<{ size: string | number | null }>(
    `SELECT COALESCE(size, octet_length(data)) AS size FROM binary_content WHERE compartment = ? AND id = ? AND version_id = ?`,
    [compartment, binaryId, versionId],
  );
  return { threads: threads.map((t) => t.thread_id), document: documents.length > 0, size: Number(sizes[0]?.size ?? 0) };
}

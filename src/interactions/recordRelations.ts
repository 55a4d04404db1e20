import { Issue, Unprocessable } from '../errors';
import { localTarget } from '../referenceString';
import { readable } from '../store/integrity';
import { locateAll } from '../store/locator';
import { contentOfOtherDocuments, contentPlaces } from '../store/messageThreads';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { ID_PATTERN } from './common';
import type { InteractionContext } from './types';

/**
 * A record's documents relate to documents of the same record (docs/decisions/029-dmp-submissions.md):
 * a DocumentReference's `relatesTo` (appends, transforms, signs, replaces) and a List's
 * entries (SubmissionSet, Folder, plain List) name stored documents of the record the
 * resource is written in; and a document's content is not a message's attachment (an
 * attachment enters the record through `$file-to-record`, which copies it). Only what a
 * version adds is checked: what the version it replaces already named stays.
 *
 * A document the writer cannot read, or that does not exist, is the integrity check's
 * refusal (decision 014), worded the same for both; here are refused the documents the
 * writer reads and that belong to another record.
 */

type Json = Record<string, unknown>;


interface Named {
  id: string;
  reference: string;
  expression: string;
}

/** The `resourceType`s of this server that `values` name (relative, or absolute under its base). */
function named(ctx: InteractionContext, resourceType: 'DocumentReference' | 'Binary', values: { value: unknown; expression: string }[]): Named[] {
  const out: Named[] = [];
  for (const { value, expression } of values) {
    const target = typeof value === 'string' ? localTarget(value, `${ctx.config.baseUrl}/`) : undefined;
    if (target?.resourceType === resourceType) out.push({ id: target.id, reference: value as string, expression });
  }
  return out;
}

const array = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

/** The stored documents a resource relates to, with the element naming each. */
function relatedDocuments(ctx: InteractionContext, r: Json | undefined): Named[] {
  if (r?.resourceType === 'DocumentReference') {
    return named(ctx, 'DocumentReference', array(r.relatesTo).map((rel, i) => ({ value: (rel?.target as Json | undefined)?.reference, expression: `DocumentReference.relatesTo[${i}].target` })));
  }
  if (r?.resourceType === 'List') {
    return named(ctx, 'DocumentReference', array(r.entry).map((e, i) => ({ value: (e?.item as Json | undefined)?.reference, expression: `List.entry[${i}].item` })));
  }
  return [];
}

/** The Binaries a document's content points to. */
function contentBinaries(ctx: InteractionContext, r: Json | undefined): Named[] {
  if (r?.resourceType !== 'DocumentReference') return [];
  return named(ctx, 'Binary', array(r.content).map((c, i) => ({ value: (c?.attachment as Json | undefined)?.url, expression: `DocumentReference.content[${i}].attachment.url` })));
}

/** `text` with every percent-escape decoded, nested ones too (`%2542` → `%42` → `B`). */
function decodedFully(text: string): string {
  let current = text;
  // each round removes at least one `%`; a bounded loop keeps a hostile url cheap
  for (let round = 0; round < 8; round++) {
    const next = current.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (next === current) break;
    current = next;
  }
  return current;
}

/** RFC 3986's characters less `%`: what a url naming a Binary is written with (decision 008, third amendment). */
const PLAIN_URL = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]*$/;

/** A url as the server and the clients in between read it: escapes decoded, `\` as `/`, control characters and spaces gone. */
function asRead(url: string): string {
  // eslint-disable-next-line no-control-regex
  return decodedFully(url).replace(/\\/g, '/').replace(/[\u0000-\u0020\u007F]/g, '');
}

/**
 * A url that names a Binary once read as the server reads it, written with anything but
 * RFC 3986's characters without `%`: an escape, a backslash, a control character, a space.
 * The read rule of a document's content matches urls as written. Whatever the host, since
 * which hosts name this server is not knowable from inside it and the read rule takes
 * `Binary/X` under any base as naming X (decision 008, amendments). No FHIR id needs any.
 */
export function unplainBinaryUrl(url: unknown): boolean {
  if (typeof url !== 'string' || PLAIN_URL.test(url)) return false;
  return asRead(url).toLowerCase().includes('binary');
}

/**
 * The ids a document's url may name a Binary by, as a client resolves it (`Binary/X`, with
 * `/_history/n`, doubled slashes, `./`, a query or a fragment): every segment after the first
 * `Binary/` that could be an id, so that none is left out.
 */
export function binaryCandidates(url: unknown): string[] {
  if (typeof url !== 'string') return [];
  const at = url.indexOf('Binary/');
  if (at < 0) return [];
  return [...new Set(url.slice(at + 'Binary/'.length).split(/[/?#]/).filter((segment) => ID_PATTERN.test(segment)))];
}

/**
 * The candidates filed in another patient's record that the writer reads: refused. One the
 * writer may not read is no relation of theirs to refuse, and the refusal would tell it
 * exists (its readers are its own record's, whom this document does not concern).
 */
async function contentElsewhere(session: Session, compartment: string, candidates: { id: string; url: string; expression: string }[], located: Map<string, string>): Promise<Issue[]> {
  const issues: Issue[] = [];
  for (const candidate of candidates) {
    const where = located.get(candidate.id);
    if (where === undefined || where === '' || where === compartment) continue;
    if (!(await readable(session, 'Binary', candidate.id))) continue;
    issues.push({ severity: 'error', code: 'business-rule', diagnostics: `${candidate.url} names Binary/${candidate.id}, which belongs to another record: a document's content is in its own record`, expression: [candidate.expression] });
  }
  return issues;
}

/** Refuses (422) what `resource`, written in `compartment`, newly names across its record or out of a message; `ownContent`: the Binaries the same write makes of its inline content. */
export async function assertRelationsInRecord(ctx: InteractionContext, session: Session, resource: Json, compartment: string | null | undefined, previous?: Json, ownContent: Set<string> = new Set()): Promise<void> {
  if (resource.resourceType !== 'DocumentReference' && resource.resourceType !== 'List') return;
  const issues: Issue[] = [];
  if (resource.resourceType === 'DocumentReference') {
    array(resource.content).forEach((c, i) => {
      if (unplainBinaryUrl((c?.attachment as Json | undefined)?.url)) {
        issues.push({
          severity: 'error',
          code: 'value',
          diagnostics: 'A url naming a Binary is written in URL characters only, as FHIR ids are (Binary/[id]): no percent-escapes, backslash, space or control character',
          expression: [`DocumentReference.content[${i}].attachment.url`],
        });
      }
    });
  }
  const before = new Set(relatedDocuments(ctx, previous).map((n) => n.id));
  if (compartment) {
    // where each newly named document is, in one statement: a SubmissionSet or Folder names many
    const targets = relatedDocuments(ctx, resource).filter((t) => !before.has(t.id));
    const located = await locateAll(session, targets.map((t) => ({ resourceType: 'DocumentReference', id: t.id })));
    for (const target of targets) {
      const where = located.get(`DocumentReference/${target.id}`);
      if (where === undefined || where === compartment) continue;
      // another record's: refused here unless deleted (a deleted target is the integrity check's refusal)
      const row = await readCurrent(session, 'DocumentReference', target.id, { withBody: false });
      if (row && !row.deleted && row.compartment !== compartment) {
        issues.push({ severity: 'error', code: 'business-rule', diagnostics: `${target.reference} belongs to another record: a document relates to, and a List gathers, documents of its own record`, expression: [target.expression] });
      }
    }
    // a document's content is in its own record: a Binary of another patient's record is read by that record's readers (decision 029, amendment)
    const urlsBefore = new Set(array(previous?.content).map((c) => (c?.attachment as Json | undefined)?.url));
    const candidates = array(resource.content).flatMap((c, i) => {
      const url = (c?.attachment as Json | undefined)?.url;
      // (the Binaries this write makes of the document's inline content are of its record)
      return urlsBefore.has(url) ? [] : binaryCandidates(url).filter((id) => !ownContent.has(id)).map((id) => ({ id, url: url as string, expression: `DocumentReference.content[${i}].attachment.url` }));
    });
    const binariesBefore = new Set(contentBinaries(ctx, previous).map((n) => n.id));
    const binaries = contentBinaries(ctx, resource).filter((b) => !binariesBefore.has(b.id));
    const places = await contentPlaces(session, compartment, binaries.map((b) => b.id), [...new Set(candidates.map((c) => c.id))]);
    issues.push(...(await contentElsewhere(session, compartment, candidates, places.located)));
    // a Binary of the record is the content of one document: another's named again would be hidden with this one (decision 008,
    // fourth amendment). Judged after the write rules (before commit): a writer they refuse gets their refusal (403), as for a free
    // id. And a Binary a later entry of the same transaction writes is judged once every entry is written, on both counts
    const documentId = String(resource.id ?? '');
    const ofRecord = candidates.filter((c) => places.located.get(c.id) === compartment);
    const later = candidates.filter((c) => !places.located.has(c.id));
    if (ofRecord.length > 0 || later.length > 0) {
      await session.checkBeforeCommit(async () => {
        const located = later.length > 0 ? (await contentPlaces(session, compartment, [], [...new Set(later.map((c) => c.id))])).located : new Map<string, string>();
        const own = [...ofRecord, ...later.filter((c) => located.get(c.id) === compartment)];
        const named = await contentOfOtherDocuments(session, compartment, documentId, [...new Set(own.map((c) => c.id))]);
        const refused = [
          ...(await contentElsewhere(session, compartment, later, located)),
          ...own
            .filter((c) => named.has(c.id))
            .map((c): Issue => ({ severity: 'error', code: 'business-rule', diagnostics: `${c.url} names Binary/${c.id}, the content of another document of the record: a document's content is its own`, expression: [c.expression] })),
        ];
        if (refused.length > 0) throw new Unprocessable(refused);
      });
    }
    for (const binary of binaries.filter((b) => places.attachments.has(b.id))) {
      issues.push({ severity: 'error', code: 'business-rule', diagnostics: `${binary.reference} is the attachment of a message: an attachment enters the record through Communication/[id]/$file-to-record, which files a copy`, expression: [binary.expression] });
    }
  }
  if (issues.length > 0) throw new Unprocessable(issues);
}

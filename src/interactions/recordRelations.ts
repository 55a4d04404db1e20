import { Issue, Unprocessable } from '../errors';
import { localTarget } from '../referenceString';
import { locateAll } from '../store/locator';
import { attachmentsAmong } from '../store/messageThreads';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
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

/**
 * A url written with percent-escapes that names a Binary once decoded: the server reads a url
 * decoded, the read rule of a document's content matches it as written. Whatever the host,
 * since which hosts name this server is not knowable from inside it and the read rule takes
 * `Binary/X` under any base as naming X (decision 008, second amendment). No FHIR id needs an
 * escape.
 */
export function escapedBinaryUrl(url: unknown): boolean {
  if (typeof url !== 'string' || !url.includes('%')) return false;
  return decodedFully(url).toLowerCase().includes('binary');
}

/** Refuses (422) what `resource`, written in `compartment`, newly names across its record or out of a message. */
export async function assertRelationsInRecord(ctx: InteractionContext, session: Session, resource: Json, compartment: string | null | undefined, previous?: Json): Promise<void> {
  if (resource.resourceType !== 'DocumentReference' && resource.resourceType !== 'List') return;
  const issues: Issue[] = [];
  if (resource.resourceType === 'DocumentReference') {
    array(resource.content).forEach((c, i) => {
      if (escapedBinaryUrl((c?.attachment as Json | undefined)?.url)) {
        issues.push({ severity: 'error', code: 'value', diagnostics: 'A url naming a Binary is written without percent-escapes, as FHIR ids are (Binary/[id])', expression: [`DocumentReference.content[${i}].attachment.url`] });
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
    const binariesBefore = new Set(contentBinaries(ctx, previous).map((n) => n.id));
    const binaries = contentBinaries(ctx, resource).filter((b) => !binariesBefore.has(b.id));
    const attachments = await attachmentsAmong(session, compartment, binaries.map((b) => b.id));
    for (const binary of binaries.filter((b) => attachments.has(b.id))) {
      issues.push({ severity: 'error', code: 'business-rule', diagnostics: `${binary.reference} is the attachment of a message: an attachment enters the record through Communication/[id]/$file-to-record, which files a copy`, expression: [binary.expression] });
    }
  }
  if (issues.length > 0) throw new Unprocessable(issues);
}

import crypto from 'node:crypto';
import { carryRefusal } from '../audit/refusal';
import { FhirError, Issue, PayloadTooLarge, Unprocessable } from '../errors';
import { INTERNAL_ACCESS, Session } from '../store/session';
import type { VersionWrite } from '../store/writeVersions';
import { base64Bytes, fullUrlKey as key, newVersion } from './common';
import { findMatches } from './search';
import { folderIssues, isFolder, MHD_LIST_TYPES, STORED_DOCUMENT } from './submissionFolders';
import { readCurrent } from '../store/resources';
import { localTarget, referencedId } from '../referenceString';
import type { DecodedBase64, FhirRequest, InteractionContext } from './types';

/**
 * IHE MHD document submissions (ITI-65 Provide Document Bundle, ITI-105 Simplified
 * Publish) with the French PDSm constraints: what a submission must hold, the size and
 * hash of its content, where that content is stored, and the uniqueness of its
 * identifiers (docs/decisions/015-document-submissions.md).
 */

type Json = Record<string, unknown>;
interface Entry {
  fullUrl?: string;
  resource?: Json;
  request?: { method?: string; url?: string };
}
interface Attachment {
  url?: unknown;
  data?: unknown;
  size?: unknown;
  hash?: unknown;
  contentType?: unknown;
  [k: string]: unknown;
}

// IHE.MHD.{Minimal,Comprehensive,UnContained.Comprehensive}.ProvideBundle, pdsm-comprehensive-provide-document-bundle
const PROVIDE_BUNDLE_PROFILE = /ProvideBundle$|provide-document-bundle$/;
// IHE.MHD.*.SubmissionSet, pdsm-submissionset-comprehensive
const SUBMISSIONSET_PROFILE = /SubmissionSet$|submissionset-[a-z-]+$/;

const profiles = (r: Json | undefined): string[] => {
  const p = (r?.meta as { profile?: unknown } | undefined)?.profile;
  return Array.isArray(p) ? p.filter((x): x is string => typeof x === 'string') : [];
};

export function isSubmissionSet(r: Json | undefined): boolean {
  if (r?.resourceType !== 'List') return false;
  const codings = (r.code as { coding?: { system?: string; code?: string }[] } | undefined)?.coding ?? [];
  return codings.some((c) => c.system === MHD_LIST_TYPES && c.code === 'submissionset') || profiles(r).some((p) => SUBMISSIONSET_PROFILE.test(p));
}

/** A transaction is an MHD submission when it says so (its profile) or carries a SubmissionSet. */
export function isMhdSubmission(bundle: { type?: unknown; meta?: unknown; entry?: unknown }): boolean {
  if (bundle.type !== 'transaction') return false;
  if (profiles(bundle as Json).some((p) => PROVIDE_BUNDLE_PROFILE.test(p))) return true;
  return Array.isArray(bundle.entry) && bundle.entry.some((e: Entry | undefined) => isSubmissionSet(e?.resource));
}

const sha1 = (bytes: Buffer) => crypto.createHash('sha1').update(bytes).digest('base64');

/**
 * The XDS error codes (ITI TF-3 Table 4.2.4.1-2) a refused submission's issues carry where
 * one applies, as IHE MHD ITI-65 asks of a Document Recipient (docs/decisions/029-dmp-submissions.md).
 */
export type XdsErrorCode =
  | 'XDSDuplicateUniqueIdInRegistry'
  | 'XDSRegistryDuplicateUniqueIdInMessage'
  | 'XDSRepositoryMetadataError'
  | 'XDSNonIdenticalHash'
  | 'XDSPatientIdDoesNotMatch'
  | 'XDSUnknownPatientId'
  | 'XDSRegistryMetadataError';

/** The issue with its XDS code in `details.text` and at the end of its diagnostics (an issue that already has details keeps them). */
export function withXdsCode(issue: Issue, code: XdsErrorCode): Issue {
  if (issue.details) return issue;
  return { ...issue, details: { text: code }, diagnostics: issue.diagnostics.includes(code) ? issue.diagnostics : `${issue.diagnostics} (${code})` };
}

/**
 * The XDS code of an issue of a refused submission that does not carry one yet: a patient
 * the submission names and the server does not find for the caller (a conditional
 * reference matching no Patient, a subject that names none), else, for a refused content
 * (422), a metadata error. Access refusals (401, 403) and the server's own errors carry none.
 */
export function xdsCodeOf(status: number, issue: Issue): XdsErrorCode | undefined {
  if (/^(?:Bundle\.entry\[\d+\]: )?Conditional reference "Patient\?[^"]*" matches no Patient/.test(issue.diagnostics)) return 'XDSUnknownPatientId';
  if (issue.code === 'not-found' && (issue.expression ?? []).some((x) => /\.subject(\.reference)?$/.test(x))) return 'XDSUnknownPatientId';
  if (status === 409 && issue.code === 'duplicate') return 'XDSDuplicateUniqueIdInRegistry';
  if (status === 422) return 'XDSRegistryMetadataError';
  return undefined;
}

/** A refusal of a submission, its issues given their XDS codes; any other error as it is. */
export function withXdsCodes(e: unknown): unknown {
  if (!(e instanceof FhirError)) return e;
  let changed = false;
  const issues = e.issues.map((i) => {
    const code = i.severity === 'error' || i.severity === 'fatal' ? xdsCodeOf(e.status, i) : undefined;
    if (!code || i.details) return i;
    changed = true;
    return withXdsCode(i, code);
  });
  if (!changed) return e;
  // what a refusal was about stays with it, for the audit trail
  return carryRefusal(e, new FhirError(e.status, issues, e.headers));
}

/** The submitter's size and hash checked against the bytes; the attachment with the server's values. */
function stamp(attachment: Attachment, bytes: Buffer, path: string, issues: Issue[]): Attachment {
  const hash = sha1(bytes);
  if (attachment.size !== undefined && attachment.size !== bytes.length) {
    issues.push(withXdsCode({ severity: 'error', code: 'value', diagnostics: `attachment.size ${JSON.stringify(attachment.size)} is not the size of the content posted (${bytes.length} bytes)`, expression: [`${path}.size`] }, 'XDSRepositoryMetadataError'));
  }
  if (attachment.hash !== undefined) {
    const given = base64Bytes(attachment.hash);
    if (!given || !given.equals(Buffer.from(hash, 'base64'))) {
      issues.push(withXdsCode({ severity: 'error', code: 'value', diagnostics: `attachment.hash ${JSON.stringify(attachment.hash)} is not the SHA-1 (base64) of the content posted (${hash})`, expression: [`${path}.hash`] }, 'XDSNonIdenticalHash'));
    }
  }
  return { ...attachment, size: bytes.length, hash };
}

const identifierText = (i: { system?: string; value?: string }) => `${i.system ?? ''}|${i.value ?? ''}`;

/**
 * ITI-65 checks that need no database: one SubmissionSet; each attachment's size and hash
 * against the bytes of the Binary it points to (or its inline data); the same uniqueId
 * twice in one submission; the Folders' own rules (submissionFolders.ts). Answers the Bundle to run: size and hash set, and each such
 * Binary given its document's subject as securityContext (decision 015). Every failure is
 * one issue of one 422.
 */
export function prepareSubmission(bundle: { entry?: Entry[] } & Json, baseUrl?: string, decoded?: Map<number, DecodedBase64>): { entry?: Entry[] } & Json {
  const entries = bundle.entry ?? [];
  const issues: Issue[] = [];
  const submissionSets = entries.map((e, i) => (isSubmissionSet(e?.resource) ? i : -1)).filter((i) => i >= 0);
  if (submissionSets.length === 0) issues.push({ severity: 'error', code: 'required', diagnostics: 'An MHD Provide Document Bundle carries a SubmissionSet List (List.code submissionset)', expression: ['Bundle.entry'] });
  for (const i of submissionSets.slice(1)) issues.push({ severity: 'error', code: 'invalid', diagnostics: 'An MHD Provide Document Bundle carries one SubmissionSet only', expression: [`Bundle.entry[${i}].resource`] });

  const binaries = new Map<string, number>();
  entries.forEach((e, i) => {
    if (e?.resource?.resourceType === 'Binary' && typeof e.fullUrl === 'string') binaries.set(key(e.fullUrl), i);
  });
  // every document of a submission is of the SubmissionSet's patient (XDS: the submission's patient id)
  // a reference to this server's Patient however it is spelt (relative, under the base, version-specific); any other as written
  const patientOf = (r: Json | undefined) => {
    const reference = (r?.subject as { reference?: unknown } | undefined)?.reference;
    if (typeof reference !== 'string') return undefined;
    const target = localTarget(reference, baseUrl === undefined ? undefined : `${baseUrl}/`);
    return target ? `${target.resourceType}/${target.id}` : reference;
  };
  const submissionPatient = submissionSets.length === 1 ? patientOf(entries[submissionSets[0]].resource) : undefined;
  entries.forEach((e, i) => {
    if (submissionPatient === undefined || e?.resource?.resourceType !== 'DocumentReference') return;
    const patient = patientOf(e.resource);
    if (patient !== submissionPatient) {
      issues.push(
        withXdsCode(
          { severity: 'error', code: 'business-rule', diagnostics: `A document of a submission is of the SubmissionSet's patient (${submissionPatient}), not ${patient ?? 'no one'}`, expression: [`Bundle.entry[${i}].resource.subject`] },
          'XDSPatientIdDoesNotMatch',
        ),
      );
    }
  });
  // each Binary's data decoded once, however many attachments point to it (and kept for its create)
  const decodedHere = decoded ?? new Map<number, DecodedBase64>();
  const binaryBytes = (target: number): Buffer | undefined => {
    const text = entries[target].resource!.data;
    // a Binary without data is stored empty (splitBinaryData): its document is measured as such
    if (text === undefined) return Buffer.alloc(0);
    const known = decodedHere.get(target);
    if (known && known.text === text) return known.bytes;
    const bytes = base64Bytes(text);
    if (bytes && typeof text === 'string') decodedHere.set(target, { text, bytes });
    return bytes;
  };
  const securityContexts = new Map<number, unknown>();
  const seenUniqueIds = new Map<string, number>();
  const out = entries.map((e, i) => {
    const r = e?.resource;
    if (r?.resourceType !== 'DocumentReference' || !Array.isArray(r.content)) return e;
    const master = r.masterIdentifier as { system?: string; value?: string } | undefined;
    if (master?.value) {
      const text = identifierText(master);
      const first = seenUniqueIds.get(text);
      if (first !== undefined) issues.push(withXdsCode({ severity: 'error', code: 'duplicate', diagnostics: `masterIdentifier ${text} is also the masterIdentifier of Bundle.entry[${first}]`, expression: [`Bundle.entry[${i}].resource.masterIdentifier`] }, 'XDSRegistryDuplicateUniqueIdInMessage'));
      else seenUniqueIds.set(text, i);
    }
    const content = (r.content as { attachment?: Attachment }[]).map((c, j) => {
      const attachment = c?.attachment;
      if (!attachment) return c;
      const path = `Bundle.entry[${i}].resource.content[${j}].attachment`;
      const target = typeof attachment.url === 'string' ? binaries.get(key(attachment.url)) : undefined;
      const bytes = target !== undefined ? binaryBytes(target) : attachment.url === undefined ? base64Bytes(attachment.data) : undefined;
      // content elsewhere (a stored Binary, a FHIR document Bundle entry) is not ours to measure here
      if (!bytes) return c;
      if (target !== undefined && r.subject && !entries[target].resource!.securityContext) securityContexts.set(target, r.subject);
      return { ...c, attachment: stamp(attachment, bytes, path, issues) };
    });
    return { ...e, resource: { ...r, content } };
  });
  issues.push(...folderIssues(entries).map((i) => withXdsCode(i, i.expression?.some((x) => x.endsWith('.subject')) ? 'XDSPatientIdDoesNotMatch' : 'XDSRegistryMetadataError')));
  if (submissionSets.length !== 1) issues.forEach((issue, n) => (issues[n] = withXdsCode(issue, 'XDSRegistryMetadataError')));
  if (issues.length > 0) throw new Unprocessable(issues);
  return {
    ...bundle,
    entry: out.map((e, i) => (securityContexts.has(i) ? { ...e, resource: { ...e.resource, securityContext: securityContexts.get(i) } } : e)),
  };
}

/**
 * The records a submission names by id: the Patient of each SubmissionSet's, Folder's and
 * document's `subject` and of each Binary's `securityContext`, relative, under this
 * server's base URL or version-specific. Conditional and in-Bundle references are resolved
 * later, with the caller's own search (an unknown patient is answered as such).
 */
export function submissionRecords(entries: unknown[], baseUrl: string): string[] {
  const out = new Set<string>();
  for (const e of entries) {
    const r = (e as Entry | undefined)?.resource;
    const named = r?.resourceType === 'Binary' ? r.securityContext : r?.resourceType === 'List' || r?.resourceType === 'DocumentReference' ? r.subject : undefined;
    const reference = (named as { reference?: unknown } | undefined)?.reference;
    const target = typeof reference === 'string' ? localTarget(reference, `${baseUrl}/`) : undefined;
    if (target?.resourceType === 'Patient') out.add(target.id);
  }
  return [...out];
}

interface UniqueId {
  type: 'DocumentReference' | 'List';
  identifier: { system?: string; value?: string };
  expression: string;
}

/** The identifiers a submission claims as its own: each document's masterIdentifier, the SubmissionSet's identifiers. */
export function submissionUniqueIds(entries: Entry[]): UniqueId[] {
  const ids: UniqueId[] = [];
  entries.forEach((e, i) => {
    const r = e?.resource;
    if (e?.request?.method?.toUpperCase() !== 'POST') return;
    if (r?.resourceType === 'DocumentReference') {
      const master = r.masterIdentifier as UniqueId['identifier'] | undefined;
      if (master?.value) ids.push({ type: 'DocumentReference', identifier: master, expression: `Bundle.entry[${i}].resource.masterIdentifier` });
    } else if (isSubmissionSet(r) && Array.isArray(r?.identifier)) {
      (r!.identifier as UniqueId['identifier'][]).forEach((id, j) => {
        if (id?.value) ids.push({ type: 'List', identifier: id, expression: `Bundle.entry[${i}].resource.identifier[${j}]` });
      });
    }
  });
  return ids;
}

const escapeToken = (s: string) => s.replace(/[\\,|$]/g, '\\$&');

/**
 * Refuses (409) identifiers a stored document or SubmissionSet already holds, over the
 * whole store and under the criteria's lock (decision 015). The refusal names the
 * submitted identifier, never what holds it.
 */
export async function assertNotSubmittedBefore(ctx: InteractionContext, session: Session, ids: UniqueId[]): Promise<void> {
  if (ids.length === 0) return;
  const registry = new Session(session.db, INTERNAL_ACCESS);
  const issues: Issue[] = [];
  for (const id of ids) {
    const token = id.identifier.system !== undefined ? `${escapeToken(id.identifier.system)}|${escapeToken(id.identifier.value!)}` : escapeToken(id.identifier.value!);
    const criteria = new URLSearchParams({ identifier: token }).toString();
    const matches = await findMatches(ctx, registry, id.type, criteria, 1, { lock: true });
    if (matches.length > 0) {
      issues.push(
        withXdsCode(
          { severity: 'error', code: 'duplicate', diagnostics: `${id.type === 'List' ? 'SubmissionSet identifier' : 'Document uniqueId (masterIdentifier)'} ${identifierText(id.identifier)} was already submitted`, expression: [id.expression] },
          'XDSDuplicateUniqueIdInRegistry',
        ),
      );
    }
  }
  if (issues.length > 0) throw new FhirError(409, issues);
}

/**
 * A submitted Folder's stored documents are of its patient's record and ones the submitter
 * reads (decision 021): another record's document, a hidden one and an unknown one are
 * refused alike (422), so the answer tells nothing of what the submitter may not read.
 */
export async function assertFolderDocumentsInRecord(session: Session, entries: Entry[]): Promise<void> {
  const issues: Issue[] = [];
  for (const [i, e] of entries.entries()) {
    if (!isFolder(e?.resource)) continue;
    const patient = referencedId(String((e.resource!.subject as { reference?: unknown } | undefined)?.reference ?? ''), 'Patient');
    if (!patient) continue;
    const items = Array.isArray(e.resource!.entry) ? (e.resource!.entry as { item?: { reference?: unknown } }[]) : [];
    for (const [j, item] of items.entries()) {
      const id = STORED_DOCUMENT.exec(String(item?.item?.reference ?? ''))?.[1];
      if (!id) continue;
      const row = await readCurrent(session, 'DocumentReference', id, { withBody: false });
      if (!row || row.deleted || row.compartment !== patient) {
        issues.push({ severity: 'error', code: 'business-rule', diagnostics: `A Folder gathers documents of its own patient's record that you can read: ${String(item!.item!.reference)} is not one`, expression: [`Bundle.entry[${i}].resource.entry[${j}].item`] });
      }
    }
  }
  if (issues.length > 0) throw new Unprocessable(issues);
}

/** ITI-105: a DocumentReference posted with its content inline (data, no url). */
export function publishesInline(resourceType: string | undefined, body: unknown): boolean {
  if (resourceType !== 'DocumentReference' || !body || typeof body !== 'object') return false;
  const content = (body as Json).content;
  return Array.isArray(content) && content.some((c: { attachment?: Attachment } | undefined) => typeof c?.attachment?.data === 'string' && c.attachment.url === undefined);
}

/**
 * ITI-105 Simplified Publish: each inline content becomes a Binary of the document's record
 * (decision 015), and the attachment keeps its url, size and hash. Answers the document to
 * store and the Binary versions to write with it.
 */
export function publishInlineContent(ctx: InteractionContext, resource: Json, lastUpdated: string): { resource: Json; binaries: VersionWrite[] } {
  const issues: Issue[] = [];
  const binaries: VersionWrite[] = [];
  const content = (resource.content as { attachment?: Attachment }[]).map((c, j) => {
    const attachment = c?.attachment;
    if (typeof attachment?.data !== 'string' || attachment.url !== undefined) return c;
    const path = `DocumentReference.content[${j}].attachment`;
    const bytes = base64Bytes(attachment.data);
    if (!bytes) {
      issues.push({ severity: 'error', code: 'invalid', diagnostics: 'attachment.data must be base64', expression: [`${path}.data`] });
      return c;
    }
    if (typeof attachment.contentType !== 'string' || attachment.contentType === '') {
      issues.push({ severity: 'error', code: 'required', diagnostics: 'attachment.contentType is required with inline data: it becomes the content type of the document', expression: [`${path}.contentType`] });
      return c;
    }
    if (bytes.length > ctx.config.binaryMaxBytes) throw new PayloadTooLarge(`${path}.data (${bytes.length} bytes) exceeds the limit of ${ctx.config.binaryMaxBytes} bytes`);
    const { data: _inline, ...rest } = stamp(attachment, bytes, path, issues);
    const id = crypto.randomUUID();
    const binary: Json = { resourceType: 'Binary', contentType: attachment.contentType };
    if (resource.subject) binary.securityContext = resource.subject;
    binaries.push(newVersion(ctx, binary, { id, versionId: 1, lastUpdated, method: 'POST', binary: { contentType: attachment.contentType, data: bytes } }));
    return { ...c, attachment: { ...rest, url: `Binary/${id}` } };
  });
  if (issues.length > 0) throw new Unprocessable(issues);
  return { resource: { ...resource, content }, binaries };
}

/**
 * The PDSm profile an entry of an MHD submission meets whether or not it claims it: its
 * SubmissionSet, DocumentReference or Folder (a patient's own folder excepted, decision 021)
 * when its patient is a national record, a Patient of this server carrying an INS
 * (docs/decisions/029-dmp-submissions.md). The record is looked up over the whole store,
 * once per submission and patient: what kind of record it is decides the rules, not what
 * the submitter may read (the write rules come after).
 */
export async function submissionProfile(ctx: InteractionContext, session: Session, resource: Json, submission: NonNullable<FhirRequest['submission']>): Promise<string | undefined> {
  if (!ctx.validator?.submissionProfiles) return undefined;
  const kind =
    resource.resourceType === 'DocumentReference' ? 'documentReference' : isSubmissionSet(resource) ? 'submissionSet' : isFolder(resource) && resource.source === undefined ? 'folder' : undefined;
  if (!kind) return undefined;
  // the patient however the subject names it: relative, under this server's base URL, or version-specific
  const target = localTarget(String((resource.subject as { reference?: unknown } | undefined)?.reference ?? ''), `${ctx.config.baseUrl}/`);
  const patientId = target?.resourceType === 'Patient' ? target.id : undefined;
  if (!patientId) return undefined;
  if (!submission.records.has(patientId)) {
    const row = await readCurrent(new Session(session.db, INTERNAL_ACCESS), 'Patient', patientId);
    const patient = row && !row.deleted && row.body ? (JSON.parse(row.body) as Json) : undefined;
    submission.records.set(patientId, patient ? ctx.validator.submissionProfiles(patient) : undefined);
  }
  return submission.records.get(patientId)?.[kind];
}

import type { Issue } from '../errors';
import { fullUrlKey as key } from './common';

/**
 * The Folders of an MHD Provide Document Bundle (PDSm `pdsm-folder-comprehensive`, MHD
 * Comprehensive Folder; docs/decisions/021-document-metadata-life.md): a Folder says what
 * kind of content it gathers (`designationType`, 1..1), gathers documents and nothing else
 * (`entry` 1..*, each item a DocumentReference of the Bundle or a stored one), and all of
 * one patient: the submission's. Pure: the Bundle's entries in, one issue per failing
 * element out.
 */

type Json = Record<string, any>;

export const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
export const DESIGNATION_TYPE = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType';
/** A stored document named by reference (relative or absolute, versioned or not); its id is the first group. */
export const STORED_DOCUMENT = /^(?:.*\/)?DocumentReference\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

const hasListCode = (r: Json | undefined, code: string) =>
  r?.resourceType === 'List' && (r.code?.coding ?? []).some((c: Json) => c?.system === MHD_LIST_TYPES && c?.code === code);

export const isFolder = (r: Json | undefined): boolean => hasListCode(r, 'folder');

const subjectOf = (r: Json | undefined): string | undefined => (typeof r?.subject?.reference === 'string' ? r.subject.reference : undefined);

export function folderIssues(entries: { fullUrl?: string; resource?: Json }[]): Issue[] {
  const issues: Issue[] = [];
  const byUrl = new Map<string, Json>();
  for (const e of entries) if (typeof e?.fullUrl === 'string' && e.resource) byUrl.set(key(e.fullUrl), e.resource);
  const submissionSubject = subjectOf(entries.find((e) => hasListCode(e?.resource, 'submissionset'))?.resource);
  entries.forEach((e, i) => {
    const folder = e?.resource;
    if (!isFolder(folder)) return;
    const at = `Bundle.entry[${i}].resource`;
    const designations = (Array.isArray(folder!.extension) ? folder!.extension : []).filter((x: Json) => x?.url === DESIGNATION_TYPE);
    if (designations.length !== 1 || !designations[0].valueCodeableConcept) {
      issues.push({ severity: 'error', code: 'required', diagnostics: `A Folder carries one designationType extension (${DESIGNATION_TYPE}) with a valueCodeableConcept: the kind of content it gathers`, expression: [`${at}.extension`] });
    }
    const subject = subjectOf(folder);
    if (submissionSubject && subject !== submissionSubject) {
      issues.push({ severity: 'error', code: 'business-rule', diagnostics: `A Folder belongs to the submission's patient (${submissionSubject}), not ${subject ?? 'no one'}`, expression: [`${at}.subject`] });
    }
    const items = Array.isArray(folder!.entry) ? folder!.entry : [];
    if (items.length === 0) issues.push({ severity: 'error', code: 'required', diagnostics: 'A Folder gathers at least one document (entry 1..*)', expression: [`${at}.entry`] });
    items.forEach((item: Json, j: number) => {
      const reference = item?.item?.reference;
      const where = `${at}.entry[${j}].item`;
      if (typeof reference !== 'string') {
        issues.push({ severity: 'error', code: 'required', diagnostics: 'A Folder entry names its document by reference', expression: [where] });
        return;
      }
      const inBundle = byUrl.get(key(reference));
      if (inBundle) {
        if (inBundle.resourceType !== 'DocumentReference') {
          issues.push({ severity: 'error', code: 'business-rule', diagnostics: `A Folder gathers DocumentReferences only: ${reference} is a ${String(inBundle.resourceType)}`, expression: [where] });
        } else if (subject && subjectOf(inBundle) !== subject) {
          issues.push({ severity: 'error', code: 'business-rule', diagnostics: `A Folder gathers documents of its own patient (${subject}): ${reference} is not one`, expression: [where] });
        }
      } else if (!STORED_DOCUMENT.test(reference)) {
        issues.push({ severity: 'error', code: 'business-rule', diagnostics: `A Folder gathers DocumentReferences only: ${reference} is neither one of this Bundle nor a stored DocumentReference`, expression: [where] });
      }
    });
  });
  return issues;
}

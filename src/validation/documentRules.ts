/**
 * What a document Bundle must carry, and how its references resolve. R4 Composition: "the
 * Composition must be the first entry in a Bundle where Bundle.type=document, and any other
 * resources referenced from Composition must be included as subsequent entries in the
 * Bundle". Resolution is R4 bundle.html ("Resolving references in Bundles"): an absolute
 * reference designates the entry with that fullUrl; a relative `Type/id` is resolved against
 * the RESTful base of the referring entry's fullUrl, and only when that fullUrl is the
 * entry's own RESTful identity ([base]/[Type]/[id] with the resource's type and id). A
 * `urn:uuid:` fullUrl has no base: a relative reference from such an entry designates
 * nothing in the Bundle, even when a resource of that type and id is there.
 *
 * Two rules follow, as the HL7 validator applies them to documents (BundleValidator):
 * - the Composition's references (subject, encounter, author, custodian, attester.party,
 *   event.detail, and in each section, nested ones too, author, focus and entry) resolve in
 *   the Bundle;
 * - every entry is reachable from the Composition by following references, forward or
 *   backward (an entry nothing links to is not part of the document); a stylesheet the
 *   Bundle's links name is reached too.
 * The specification says the first with "must", not a SHALL, and the second only through
 * the Composition's role; so a conformance verdict reports an error and a write a warning
 * (DomainContext.verdict). A collection, a message or a transaction is not concerned: there
 * an unresolved reference may designate a resource outside the Bundle.
 * Pure: takes the Bundle as JSON.
 */
import type { Issue } from '../errors';
import { referenceTarget } from '../referenceString';

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** A RESTful identity: http(s)://…/[Type]/[id] (R4 bundle.html, the regex of RESTful URLs, without _history). */
const RESTFUL = /^https?:\/\/.+\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;

interface Entry {
  index: number;
  fullUrl?: string;
  resource: any;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The base a relative reference from this entry resolves against: its fullUrl without [Type]/[id], when that is its own identity. */
function restfulBase(e: Entry): string | undefined {
  const m = e.fullUrl ? RESTFUL.exec(e.fullUrl) : null;
  if (!m || m[1] !== e.resource?.resourceType || m[2] !== e.resource?.id) return undefined;
  return e.fullUrl!.slice(0, e.fullUrl!.length - `${m[1]}/${m[2]}`.length);
}

/** The entries by fullUrl, for resolving many references in one Bundle. */
function byFullUrl(entries: Entry[]): Map<string, Entry[]> {
  const out = new Map<string, Entry[]>();
  for (const e of entries) if (e.fullUrl) out.set(e.fullUrl, [...(out.get(e.fullUrl) ?? []), e]);
  return out;
}

/** The entries a reference made from `from` designates, by the rules of R4 bundle.html. */
export function resolveInBundle(ref: string, from: Entry, entries: Entry[] | Map<string, Entry[]>): Entry[] {
  const index = entries instanceof Map ? entries : byFullUrl(entries);
  const hash = ref.indexOf('#');
  const target = hash >= 0 ? ref.slice(0, hash) : ref;
  if (!target) return [];
  let url: string | undefined = target;
  if (!SCHEME.test(target)) {
    const base = restfulBase(from);
    url = base === undefined ? undefined : base + target;
  }
  if (url === undefined) return [];
  const versioned = /^(.*)\/_history\/([^/]+)$/.exec(url);
  if (versioned) return (index.get(versioned[1]) ?? []).filter((e) => e.resource?.meta?.versionId === versioned[2]);
  return index.get(url) ?? [];
}

/** The Composition's references the document must carry, with their paths below the Composition. */
function compositionReferences(c: any): { ref: string; path: string; name: string }[] {
  const out: { ref: string; path: string; name: string }[] = [];
  const add = (v: any, path: string, name: string) => {
    const ref = str(v?.reference);
    if (ref && !ref.startsWith('#')) out.push({ ref, path, name });
  };
  const each = (list: any, path: string, name: string) => {
    if (Array.isArray(list)) list.forEach((v, i) => add(v, `${path}[${i}]`, name));
  };
  add(c.subject, 'subject', 'Composition.subject');
  add(c.encounter, 'encounter', 'Composition.encounter');
  each(c.author, 'author', 'Composition.author');
  add(c.custodian, 'custodian', 'Composition.custodian');
  if (Array.isArray(c.attester)) c.attester.forEach((a: any, i: number) => add(a?.party, `attester[${i}].party`, 'Composition.attester.party'));
  if (Array.isArray(c.event)) c.event.forEach((e: any, i: number) => each(e?.detail, `event[${i}].detail`, 'Composition.event.detail'));
  const sections = (list: any, path: string) => {
    if (!Array.isArray(list)) return;
    list.forEach((s: any, i: number) => {
      const sp = `${path}[${i}]`;
      each(s?.author, `${sp}.author`, 'Composition.section.author');
      add(s?.focus, `${sp}.focus`, 'Composition.section.focus');
      each(s?.entry, `${sp}.entry`, 'Composition.section.entry');
      sections(s?.section, `${sp}.section`);
    });
  };
  sections(c.section, 'section');
  return out;
}

/** Every reference and URI a resource holds: `reference` of a Reference, and any other string naming an entry's fullUrl. */
function linksOf(resource: any, fullUrls: Set<string>): string[] {
  const out: string[] = [];
  const walk = (v: any, key?: string) => {
    if (typeof v === 'string') {
      if (key === 'reference' ? !v.startsWith('#') : fullUrls.has(v)) out.push(v);
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, key);
    } else if (v && typeof v === 'object') {
      // a contained resource's references are the container's (dom-3); the narrative is not followed
      for (const k of Object.keys(v)) if (k !== 'div') walk(v[k], k);
    }
  };
  walk(resource);
  return out;
}

export function documentIssues(bundle: any, path: string, verdict: boolean): Issue[] {
  if (bundle?.type !== 'document' || !Array.isArray(bundle.entry)) return [];
  const entries: Entry[] = [];
  bundle.entry.forEach((e: any, index: number) => {
    if (e && typeof e === 'object' && e.resource && typeof e.resource === 'object') entries.push({ index, fullUrl: str(e.fullUrl), resource: e.resource });
  });
  const first = entries[0];
  if (!first || first.index !== 0 || first.resource.resourceType !== 'Composition') return [];
  const severity = verdict ? 'error' : 'warning';
  const issues: Issue[] = [];
  const index = byFullUrl(entries);

  for (const { ref, path: at, name } of compositionReferences(first.resource)) {
    if (resolveInBundle(ref, first, index).length) continue;
    // a resource of that type and id whose fullUrl the reference does not designate: say which
    const t = referenceTarget(ref);
    const apparent = t && t.base === undefined ? entries.filter((e) => e.resource.resourceType === t.resourceType && e.resource.id === t.id) : [];
    const note = apparent.length
      ? `. A resource ${t!.resourceType}/${t!.id} is in the Bundle (fullUrl ${apparent.map((e) => e.fullUrl ?? '(none)').join(', ')}), but a relative reference from an entry whose fullUrl is ${first.fullUrl ?? '(none)'} does not designate it (R4 bundle.html: it resolves against the RESTful base of the referring entry's fullUrl)`
      : '';
    issues.push({ severity, code: 'not-found', diagnostics: `Can't find '${ref}' in the Bundle (${name}): a document carries what its Composition refers to${note}`, expression: [`${path}.entry[0].resource.${at}`] });
  }

  // reachable from the Composition, following references forward from what is reached, or backward to it
  const fullUrls = new Set(index.keys());
  const targets = new Map<Entry, Entry[]>(entries.map((e) => [e, linksOf(e.resource, fullUrls).flatMap((ref) => resolveInBundle(ref, e, index))]));
  const reached = new Set<Entry>();
  // iterative: a long chain of references must not exhaust the stack
  const visit = (start: Entry) => {
    const todo = [start];
    for (let e = todo.pop(); e; e = todo.pop()) {
      if (reached.has(e)) continue;
      reached.add(e);
      todo.push(...(targets.get(e) ?? []));
    }
  };
  visit(first);
  // a stylesheet the document names in Bundle.link (R4 documents.html, "Document Presentation") is part of it
  const links: any[] = Array.isArray(bundle.link) ? bundle.link : [];
  for (const l of links) {
    const url = str(l?.url);
    if (!url) continue;
    // a relative link is the Bundle's, not an entry's: it names the entry whose fullUrl ends with it
    const named = SCHEME.test(url) ? (index.get(url) ?? []) : entries.filter((e) => e.fullUrl?.endsWith(`/${url}`));
    named.forEach(visit);
  }
  for (let grew = true; grew; ) {
    grew = false;
    for (const e of entries) {
      if (!reached.has(e) && (targets.get(e) ?? []).some((t) => reached.has(t))) {
        visit(e);
        grew = true;
      }
    }
  }
  for (const e of entries) {
    if (reached.has(e)) continue;
    issues.push({
      severity,
      code: 'invalid',
      diagnostics: `Entry ${e.fullUrl ? `'${e.fullUrl}' ` : ''}isn't reachable by traversing references (forward or backward) from the Composition: it is not part of the document`,
      expression: [`${path}.entry[${e.index}]`],
    });
  }
  return issues;
}

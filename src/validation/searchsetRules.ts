/**
 * Rules of a searchset Bundle, as the HL7 reference validator applies them: the self link
 * says what was searched, each entry says why it is there (search.mode), a match or an
 * include is a resource with an id, a match is of a searched type, an outcome is an
 * OperationOutcome. Pure: the caller says which names are resource types.
 */
import type { Issue } from '../errors';

/**
 * The resource types a search URL asks for: the type in its path ([base]/Patient?…,
 * [base]/Patient/1/Observation?…), else its `_type` parameter; undefined when the URL
 * does not say (a system search without _type).
 */
export function searchedTypes(url: string, isResourceType: (name: string) => boolean): string[] | undefined {
  const q = url.indexOf('?');
  const pathPart = (q >= 0 ? url.slice(0, q) : url).replace(/\/+$/, '');
  const last = pathPart.slice(pathPart.lastIndexOf('/') + 1);
  if (isResourceType(last)) return [last];
  if (q < 0) return undefined;
  for (const pair of url.slice(q + 1).split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || decodeURIComponent(pair.slice(0, eq)) !== '_type') continue;
    const types = decodeURIComponent(pair.slice(eq + 1))
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    if (types.length) return types;
  }
  return undefined;
}

export function searchsetIssues(bundle: any, path: string, isResourceType: (name: string) => boolean): Issue[] {
  if (bundle?.type !== 'searchset') return [];
  const issues: Issue[] = [];
  const self = Array.isArray(bundle.link) ? bundle.link.find((l: any) => l?.relation === 'self' && typeof l.url === 'string') : undefined;
  if (!self) {
    issues.push({ severity: 'warning', code: 'invalid', diagnostics: 'SearchSet Bundles should have a self link that specifies what the search was', expression: [path] });
  }
  const types = self ? searchedTypes(self.url, isResourceType) : undefined;
  const entries: any[] = Array.isArray(bundle.entry) ? bundle.entry : [];
  let modeless = false;
  entries.forEach((e, i) => {
    if (!e || typeof e !== 'object') return;
    const mode = typeof e.search?.mode === 'string' ? e.search.mode : undefined;
    const r = e.resource;
    // without a mode nothing says whether the entry is a match: only a warning, as the reference validator does
    if (mode === undefined) {
      modeless = true;
      return;
    }
    if (!r || typeof r !== 'object' || typeof r.resourceType !== 'string') return;
    const rp = `${path}.entry[${i}].resource`;
    if (mode === 'outcome') {
      if (r.resourceType !== 'OperationOutcome') {
        issues.push({ severity: 'error', code: 'invalid', diagnostics: `This is not an OperationOutcome (${r.resourceType})`, expression: [rp] });
      }
      return;
    }
    // a match or an include is a resource found on the server: it has an identity
    if (typeof r.id !== 'string' || !r.id) {
      issues.push({ severity: 'error', code: 'invalid', diagnostics: 'Search results must have ids', expression: [rp] });
    }
    if (mode === 'match' && types && !types.includes(r.resourceType)) {
      issues.push({
        severity: 'error',
        code: 'invalid',
        diagnostics: `This is not a matching resource type for the specified search (${r.resourceType} expecting [${types.join(', ')}])`,
        expression: [rp],
      });
    }
  });
  if (modeless) {
    issues.push({ severity: 'warning', code: 'invalid', diagnostics: 'SearchSet bundles should have search modes on the entries', expression: [path] });
  }
  return issues;
}

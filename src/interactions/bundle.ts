import type { Issue } from '../errors';
import { operationOutcome } from '../errors';

export interface BundleLink {
  relation: string;
  url: string;
}

/** Query string of name/value pairs as FHIR links show them. */
export function queryString(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${encodeURIComponent(k).replace(/%3A/gi, ':')}=${encodeURIComponent(v).replace(/%2C/gi, ',').replace(/%7C/gi, '|')}`).join('&');
}

export function linkUrl(base: string, path: string, pairs: [string, string][]): string {
  const q = queryString(pairs);
  return `${base}/${path}${q ? `?${q}` : ''}`;
}

export function outcomeEntry(issues: Issue[]): Record<string, unknown> | undefined {
  if (issues.length === 0) return undefined;
  return { resource: operationOutcome(issues), search: { mode: 'outcome' } };
}

import { lookupIdentifier } from '../access/policy/recordLookup';
import { BadRequest, PreconditionFailed } from '../errors';
import type { Session } from '../store/session';
import { findMatches } from './search';
import type { InteractionContext } from './types';

/** A conditional reference: `Type?criteria` in Reference.reference (http.html#trules). */
const CONDITIONAL = /^[A-Z][A-Za-z]+\?/;

/** The references of a body (Reference.reference values). */
export function referencesOf(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => referencesOf(v, found));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') found.push(v);
      else referencesOf(v, found);
    }
  }
  return found;
}

export function collectConditionalReferences(value: unknown, found: Set<string>): void {
  for (const reference of referencesOf(value)) if (CONDITIONAL.test(reference)) found.add(reference);
}

/** Each conditional reference resolved to the one resource it matches (`Type/id`); 412 on none or several. */
export async function resolveConditionalReferences(ctx: InteractionContext, session: Session, references: Iterable<string>, into: Map<string, string>): Promise<void> {
  for (const ref of references) {
    if (into.has(ref)) continue;
    const [type, criteria] = [ref.slice(0, ref.indexOf('?')), ref.slice(ref.indexOf('?') + 1)];
    if (!ctx.registry.isSupported(type)) throw new BadRequest(`Conditional reference "${ref}": unknown resource type`);
    // a depositing system names its patient by INS: found as its lookup finds it, Patient being closed to its searches (decision 035)
    const identifier = session.access.lookUpRecord ? lookupIdentifier(type, [...new URLSearchParams(criteria)] as [string, string][]) : undefined;
    if (identifier) {
      const patientId = await session.access.lookUpRecord!(session, identifier);
      if (!patientId) throw new PreconditionFailed(`Conditional reference "${ref}" matches no ${type}`);
      into.set(ref, `${type}/${patientId}`);
      continue;
    }
    const matches = await findMatches(ctx, session, type, criteria, 2);
    if (matches.length !== 1) throw new PreconditionFailed(`Conditional reference "${ref}" matches ${matches.length === 0 ? 'no' : 'more than one'} ${type}`);
    into.set(ref, `${type}/${matches[0].id}`);
  }
}

function replace(value: unknown, resolved: Map<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => replace(v, resolved));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = k === 'reference' && typeof v === 'string' ? (resolved.get(v) ?? v) : replace(v, resolved);
    return out;
  }
  return value;
}

/**
 * A resource written outside a transaction may use conditional references too: they are
 * resolved the same way, so that no search URL is ever stored as a reference.
 */
export async function withConditionalReferencesResolved(ctx: InteractionContext, session: Session, resource: Record<string, unknown>): Promise<Record<string, unknown>> {
  const found = new Set<string>();
  collectConditionalReferences(resource, found);
  if (found.size === 0) return resource;
  const resolved = new Map<string, string>();
  await resolveConditionalReferences(ctx, session, found, resolved);
  return replace(resource, resolved) as Record<string, unknown>;
}

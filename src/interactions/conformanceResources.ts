import fs from 'node:fs';
import path from 'node:path';
import { FhirError, Issue, Unprocessable } from '../errors';
import { isParseError } from '../validation';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { newVersion, nowInstant } from './common';
import { findMatches } from './search';
import type { InteractionContext } from './types';

/** Resource types that change what the validator knows when they are written. */
export const CONFORMANCE_TYPES = new Set(['StructureDefinition', 'ValueSet', 'CodeSystem', 'Questionnaire']);

const isError = (i: Issue) => i.severity === 'error' || i.severity === 'fatal';

/**
 * Refuses a write that would leave the resource invalid, with every issue; warnings never
 * block. 400 when the resource is not even well-formed FHIR (unknown property, wrong JSON
 * type or format of a value), 422 when it breaks a rule or a profile (http.html#update).
 */
export function assertValid(ctx: InteractionContext, resource: Record<string, unknown>, mode: 'create' | 'update', options: { patched?: boolean } = {}): void {
  if (!ctx.validator) return;
  const issues = ctx.validator.validate(resource, { mode });
  const errors = issues.filter(isError);
  if (errors.length === 0) return;
  // the result of a patch was not sent by the client: an invalid one is always 422 (http.html#patch)
  throw errors.some(isParseError) && !options.patched ? new FhirError(400, issues) : new Unprocessable(issues);
}

/**
 * A conformance resource written through the API (a tester loading a profile) is given
 * to the validator: from then on $validate?profile= and meta.profile use it. Ones it cannot
 * use (unknown base, no differential …) are refused with 422.
 */
export function registerConformance(ctx: InteractionContext, resource: Record<string, unknown>): void {
  if (!ctx.validator || !CONFORMANCE_TYPES.has(String(resource.resourceType))) return;
  // Without a canonical URL nothing can refer to it (url is optional on all but StructureDefinition).
  if (typeof resource.url !== 'string' && resource.resourceType !== 'StructureDefinition') return;
  const issues = ctx.validator.addConformanceResource(resource);
  if (issues.some(isError)) throw new Unprocessable(issues);
}

/**
 * One canonical URL (and version) names one conformance resource: a second one would leave
 * the validator to pick either. Refused with 422; the existing resource is to be updated.
 */
export async function assertUniqueCanonical(ctx: InteractionContext, session: Session, resource: Record<string, unknown>, id: string): Promise<void> {
  const type = String(resource.resourceType);
  if (!CONFORMANCE_TYPES.has(type) || typeof resource.url !== 'string') return;
  // search syntax: a comma would split the value into alternatives
  const escape = (v: string) => v.replace(/[\\,$|]/g, '\\$&');
  const pairs: [string, string][] = [['url', escape(resource.url)]];
  if (typeof resource.version === 'string') pairs.push(['version', escape(resource.version)]);
  const criteria = new URLSearchParams(pairs).toString();
  // two concurrent writes of the same canonical: the second waits, then sees the first
  const others = (await findMatches(ctx, session, type, criteria, 2, { lock: true })).filter((m) => m.id !== id);
  if (others.length > 0) {
    throw new Unprocessable([
      {
        severity: 'error',
        code: 'duplicate',
        diagnostics: `${type}/${others[0].id} already has url ${resource.url}${typeof resource.version === 'string' ? ` and version ${resource.version}` : ''}: update that resource instead`,
        expression: [`${type}.url`],
      },
    ]);
  }
}

export function unregisterConformance(ctx: InteractionContext, resourceType: string, body: string | null): void {
  if (!ctx.validator || !CONFORMANCE_TYPES.has(resourceType) || !body) return;
  const url = (JSON.parse(body) as { url?: string }).url;
  if (url) ctx.validator.removeConformanceResource(resourceType, url);
}

function withoutMeta(resource: Record<string, unknown>): string {
  const { meta: _meta, ...rest } = resource;
  return JSON.stringify(rest);
}

/**
 * At start-up: our conformance resources (profiles/) are stored so that GET and search
 * serve them (a new version only when the file changed), and conformance resources
 * loaded earlier through the API are given back to the validator.
 */
export async function syncConformanceResources(ctx: InteractionContext, session: Session, profilesDir: string): Promise<void> {
  const files: Record<string, unknown>[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.json')) {
        const resource = JSON.parse(fs.readFileSync(full, 'utf8'));
        if (resource && typeof resource.id === 'string' && ctx.registry.isSupported(resource.resourceType)) files.push(resource);
      }
    }
  };
  if (fs.existsSync(profilesDir)) walk(profilesDir);
  const fromFiles = new Set<string>();
  for (const resource of files) {
    const type = String(resource.resourceType);
    const id = String(resource.id);
    fromFiles.add(`${type}/${id}`);
    const current = await readCurrent(session, type, id);
    if (current && !current.deleted && current.body && withoutMeta(JSON.parse(current.body)) === withoutMeta(resource)) continue;
    await session.write([newVersion(ctx, resource, { id, versionId: (current?.versionId ?? 0) + 1, lastUpdated: nowInstant(), method: 'PUT', previousCompartment: current?.compartment })]);
  }
  if (!ctx.validator) return;
  const types = [...CONFORMANCE_TYPES];
  const stored = await session.query<{ resource_type: string; id: string; body: string }>(
    `SELECT resource_type, id, body::text AS body FROM resource WHERE resource_type IN (${types.map(() => '?').join(', ')}) AND NOT deleted`,
    types,
  );
  // Profiles that build on others: register bases first by retrying what failed, a few rounds.
  let pending = stored.filter((r) => !fromFiles.has(`${r.resource_type}/${r.id}`)).map((r) => JSON.parse(r.body));
  for (let round = 0; round < 3 && pending.length; round++) {
    pending = pending.filter((resource) => ctx.validator!.addConformanceResource(resource).some(isError));
  }
  for (const resource of pending) ctx.log.warn({ resourceType: resource.resourceType, url: resource.url }, 'stored conformance resource could not be loaded into the validator');
}

import fs from 'node:fs';
import path from 'node:path';
import { FhirError, Issue, Unprocessable } from '../errors';
import { isParseError } from '../validation';
import { followConformanceChanges, ConformanceChanges } from '../store/conformanceChanges';
import { freshReads } from '../store/freshReads';
import { bumpConformanceVersion, ConformanceResource, conformanceResources, conformanceVersion, conformanceVersions } from '../store/conformanceRows';
import { readCurrent } from '../store/resources';
import { INTERNAL_ACCESS, Session } from '../store/session';
import { newVersion, nowInstant } from './common';
import { findMatches } from './search';
import type { InteractionContext, ResourceValidator } from './types';

/** Resource types that change what the validator knows when they are written. */
export const CONFORMANCE_TYPES = new Set(['StructureDefinition', 'ValueSet', 'CodeSystem', 'Questionnaire']);

const isError = (i: Issue) => i.severity === 'error' || i.severity === 'fatal';

/**
 * Refuses a write that would leave the resource invalid, with every issue; warnings never
 * block. 400 when the resource is not even well-formed FHIR (unknown property, wrong JSON
 * type or format of a value), 422 when it breaks a rule or a profile (http.html#update).
 */
export function assertValid(ctx: InteractionContext, resource: Record<string, unknown>, mode: 'create' | 'update', options: { patched?: boolean; profiles?: string[] } = {}): void {
  if (!ctx.validator) return;
  const issues = ctx.validator.validate(resource, options.profiles?.length ? { mode, profiles: options.profiles } : { mode });
  const errors = issues.filter(isError);
  if (errors.length === 0) return;
  // the result of a patch was not sent by the client: an invalid one is always 422 (http.html#patch)
  throw errors.some(isParseError) && !options.patched ? new FhirError(400, issues) : new Unprocessable(issues);
}

/**
 * What this worker's validator holds of the stored conformance resources, by `Type/id`:
 * the version loaded and the canonical it was registered under (none when deleted or not
 * usable). Compared with the rows when another worker announces a change.
 */
interface Loaded {
  versionId: number;
  url?: string;
}
const loadedBy = new WeakMap<ResourceValidator, Map<string, Loaded>>();

function loaded(validator: ResourceValidator): Map<string, Loaded> {
  let map = loadedBy.get(validator);
  if (!map) loadedBy.set(validator, (map = new Map()));
  return map;
}

/** The canonical a resource is registered under in the validator: url|version when versioned. */
function canonical(resource: Record<string, unknown>): string | undefined {
  if (typeof resource.url !== 'string') return undefined;
  return typeof resource.version === 'string' ? `${resource.url}|${resource.version}` : resource.url;
}

/** Without a canonical URL nothing can refer to it (url is optional on all but StructureDefinition). */
const usable = (resource: Record<string, unknown>) => typeof resource.url === 'string' || resource.resourceType === 'StructureDefinition';

/** Replaces what the validator holds for `key` with `resource` (or nothing), unless it already holds a later version. */
function load(validator: ResourceValidator, resourceType: string, key: string, versionId: number, resource: Record<string, unknown> | undefined): Issue[] {
  const map = loaded(validator);
  const before = map.get(key);
  if (before && before.versionId >= versionId) return [];
  if (before?.url) validator.removeConformanceResource(resourceType, before.url);
  const issues = resource && usable(resource) ? validator.addConformanceResource(resource) : [];
  // one that cannot be used is not recorded: it is tried again with the next change
  if (issues.some(isError)) map.delete(key);
  else map.set(key, { versionId, url: resource && canonical(resource) });
  return issues;
}

/**
 * A conformance resource written through the API (a tester loading a profile) is given
 * to the validator once its transaction commits: from then on $validate?profile= and
 * meta.profile use it, on every worker (the counter moved in the same transaction tells
 * the others). Ones it cannot use (unknown base, no differential …) are refused with 422
 * before anything is written.
 */
export async function registerConformance(ctx: InteractionContext, session: Session, resource: Record<string, unknown>): Promise<void> {
  const validator = ctx.validator;
  const type = String(resource.resourceType);
  if (!validator || !CONFORMANCE_TYPES.has(type)) return;
  const issues = usable(resource) ? validator.checkConformanceResource(resource) : [];
  if (issues.some(isError)) throw new Unprocessable(issues);
  // also without a url: what an earlier version registered is to go
  await bumpConformanceVersion(session);
  const versionId = Number((resource.meta as { versionId?: string } | undefined)?.versionId);
  session.afterCommit(() => {
    for (const issue of load(validator, type, `${type}/${String(resource.id)}`, versionId, resource).filter(isError)) {
      ctx.log.warn({ resourceType: type, url: resource.url, issue: issue.diagnostics }, 'committed conformance resource could not be loaded into the validator');
    }
  });
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

/** A deleted conformance resource leaves the validator once the deletion commits, on every worker. */
export async function unregisterConformance(ctx: InteractionContext, session: Session, resourceType: string, id: string, versionId: number): Promise<void> {
  const validator = ctx.validator;
  if (!validator || !CONFORMANCE_TYPES.has(resourceType)) return;
  await bumpConformanceVersion(session);
  session.afterCommit(() => load(validator, resourceType, `${resourceType}/${id}`, versionId, undefined));
}

function withoutMeta(resource: Record<string, unknown>): string {
  const { meta: _meta, ...rest } = resource;
  return JSON.stringify(rest);
}

/**
 * At start-up: our conformance resources (profiles/) are stored so that GET and search
 * serve them (a new version only when the file changed), and conformance resources
 * loaded earlier through the API are given back to the validator. Returns the value of
 * the counter the validator is now up to.
 */
export async function syncConformanceResources(ctx: InteractionContext, session: Session, profilesDir: string): Promise<number> {
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
  let written = false;
  for (const resource of files) {
    const type = String(resource.resourceType);
    const id = String(resource.id);
    fromFiles.add(`${type}/${id}`);
    const current = await readCurrent(session, type, id);
    if (current && !current.deleted && current.body && withoutMeta(JSON.parse(current.body)) === withoutMeta(resource)) continue;
    await session.write([newVersion(ctx, resource, { id, versionId: (current?.versionId ?? 0) + 1, lastUpdated: nowInstant(), method: 'PUT', previousCompartment: current?.compartment })]);
    written ||= CONFORMANCE_TYPES.has(type);
  }
  if (written) await bumpConformanceVersion(session);
  if (!ctx.validator) return 0;
  const validator = ctx.validator;
  // the counter first: what is committed after it moves it again, so nothing is missed
  const version = await conformanceVersion(session);
  const rows = await conformanceVersions(session, [...CONFORMANCE_TYPES]);
  const map = loaded(validator);
  // the validator read our files itself: only what was loaded through the API is added here
  const fromApi = rows.filter((r) => !r.deleted && !fromFiles.has(`${r.resourceType}/${r.id}`));
  const stored = await conformanceResources(session, fromApi);
  for (const r of rows) {
    const key = `${r.resourceType}/${r.id}`;
    if (fromFiles.has(key)) map.set(key, { versionId: r.versionId, url: canonical(files.find((f) => `${f.resourceType}/${f.id}` === key)!) });
  }
  loadStoredConformance(ctx, validator, stored);
  fromApiOf.set(validator, stored);
  upTo.set(validator, version);
  return version;
}

/** The conformance resources written through the API that the last sync gave this validator (what another validator of the same files needs). */
const fromApiOf = new WeakMap<ResourceValidator, ConformanceResource[]>();
export const conformanceFromApi = (validator: ResourceValidator): ConformanceResource[] => fromApiOf.get(validator) ?? [];

/**
 * Gives a validator (which read our profile files itself) the conformance resources stored
 * through the API. Profiles that build on others: bases first, by retrying what failed, a few rounds.
 */
export function loadStoredConformance(ctx: Pick<InteractionContext, 'log'>, validator: ResourceValidator, stored: ConformanceResource[]): void {
  let pending = stored;
  for (let round = 0; round < 3 && pending.length; round++) {
    pending = pending.filter((r) => load(validator, r.resourceType, `${r.resourceType}/${r.id}`, r.versionId, JSON.parse(r.body)).some(isError));
  }
  for (const r of pending) ctx.log.warn({ resourceType: r.resourceType, id: r.id }, 'stored conformance resource could not be loaded into the validator');
}

/**
 * Brings the validator up to the stored conformance resources after another worker
 * changed some: the versions are compared, and only the changed ones are read and loaded.
 */
export async function reloadConformanceResources(ctx: InteractionContext): Promise<void> {
  const validator = ctx.validator;
  if (!validator) return;
  const session = new Session(ctx.db.knex, INTERNAL_ACCESS);
  const map = loaded(validator);
  const changed = (await conformanceVersions(session, [...CONFORMANCE_TYPES])).filter((r) => (map.get(`${r.resourceType}/${r.id}`)?.versionId ?? 0) < r.versionId);
  if (changed.length === 0) return;
  const bodies = new Map((await conformanceResources(session, changed)).map((r) => [`${r.resourceType}/${r.id}`, r]));
  for (const r of changed) {
    const key = `${r.resourceType}/${r.id}`;
    const stored = bodies.get(key);
    // read after the versions: a body may be newer still, never older
    const issues = load(validator, r.resourceType, key, stored?.versionId ?? r.versionId, stored ? JSON.parse(stored.body) : undefined);
    if (issues.some(isError)) ctx.log.warn({ resourceType: r.resourceType, id: r.id }, 'stored conformance resource could not be loaded into the validator');
  }
}

/**
 * The counter as committed when it is read, one read for the requests that ask while
 * another runs (src/store/freshReads.ts): each request still sees every change committed
 * before it arrived, as with a read of its own.
 */
const counters = new WeakMap<object, () => Promise<number>>();
function counterOf(ctx: InteractionContext): () => Promise<number> {
  // outside the request: other requests wait for this read (src/store/freshReads.ts)
  const shared = ctx.db.shared;
  let read = counters.get(shared);
  if (!read) counters.set(shared, (read = freshReads(() => conformanceVersion(new Session(shared, INTERNAL_ACCESS)))));
  return read;
}

/** The counter's value each validator was last brought up to from the rows (start-up, or a reload on a miss). */
const upTo = new WeakMap<ResourceValidator, number>();

/**
 * The profiles a request names (meta.profile of what it writes or validates, the profile
 * of $validate): read-your-writes across workers (docs/decisions/022-workers.md). A profile
 * this worker does not know may have been committed by another one whose notification has
 * not arrived yet: the counter is read (one row) and, when it moved, the changes are
 * reloaded before the request goes on. Nothing is read while every named profile is known,
 * nor on the embedded database (one process, loaded at commit).
 */
export async function knowProfiles(ctx: InteractionContext, profiles: string[]): Promise<void> {
  const validator = ctx.validator;
  if (!validator || !ctx.config.databaseUrl || profiles.every((p) => validator.hasProfile(p))) return;
  const version = await counterOf(ctx)();
  if (version <= (upTo.get(validator) ?? 0)) return;
  await reloadConformanceResources(ctx);
  upTo.set(validator, Math.max(version, upTo.get(validator) ?? 0));
}

/** The profiles a request names: meta.profile of its resource, of a Bundle's entries, of a $validate Parameters, and `profile` parameters. */
export function profilesNamed(body: unknown, query: [string, string][]): string[] {
  const out = query.filter(([k]) => k === 'profile').map(([, v]) => v);
  const metaProfiles = (resource: unknown) => {
    const profile = (resource as { meta?: { profile?: unknown } } | null)?.meta?.profile;
    if (Array.isArray(profile)) for (const p of profile) if (typeof p === 'string') out.push(p);
  };
  if (!body || typeof body !== 'object') return out;
  const resource = body as Record<string, unknown>;
  metaProfiles(resource);
  if (resource.resourceType === 'Bundle' && Array.isArray(resource.entry)) for (const e of resource.entry) metaProfiles((e as { resource?: unknown } | null)?.resource);
  if (resource.resourceType === 'Parameters' && Array.isArray(resource.parameter)) {
    for (const p of resource.parameter as Record<string, unknown>[]) {
      if (p?.name === 'profile' && typeof (p.valueUri ?? p.valueCanonical) === 'string') out.push(String(p.valueUri ?? p.valueCanonical));
      if (p?.name === 'resource') metaProfiles(p.resource);
    }
  }
  return out;
}

/**
 * On PostgreSQL, where other processes write to the same database, follows their changes
 * of conformance resources from `loadedVersion` on (src/store/conformanceChanges.ts). The
 * embedded database has one process: what it commits is registered as it commits.
 */
export function followConformanceResources(ctx: InteractionContext, loadedVersion: number): ConformanceChanges | undefined {
  if (!ctx.validator || !ctx.config.databaseUrl) return undefined;
  let running: Promise<void> | undefined;
  let again = false;
  // one reload at a time; a change announced meanwhile makes one more
  const reload = () => {
    if (running) {
      again = true;
      return;
    }
    running = reloadConformanceResources(ctx)
      .catch((e) => ctx.log.warn({ err: e }, 'conformance resources could not be reloaded'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          reload();
        }
      });
  };
  const changes = followConformanceChanges({ databaseUrl: ctx.config.databaseUrl, schema: ctx.config.databaseSchema }, loadedVersion, reload, (e) =>
    ctx.log.warn({ err: e }, 'the connection that follows conformance changes was lost; reconnecting'),
  );
  return {
    close: async () => {
      await changes.close();
      await running;
    },
  };
}

import { FhirError, Issue, Unprocessable } from '../errors';
import { containedIds } from '../integrity/references';
import { claimsUniqueIdentifiers } from '../integrity/uniqueIdentifiers';
import { ClaimHolder, claimIdentifiers, claimIdentifiersOfMany, currentTargets, currentTargetsOfTypes, readable, referrersOf } from './integrity';
import type { Session } from './session';
import { UNRESTRICTED } from './visibility';
import type { VersionWrite } from './writeVersions';

/**
 * What one session knows of the resources its writes refer to (docs/decisions/014-integrity.md):
 * the versions it wrote itself, and the targets it already looked up, so that a
 * transaction of a thousand documents about one Patient looks the Patient up once.
 */
export class IntegrityState {
  /** `Type/id` → what this session wrote last: its version, or deleted. */
  readonly written = new Map<string, { deleted: boolean; versionId: number }>();
  /** `Type/id` → current version as the caller sees it, or undefined when missing or hidden. */
  readonly looked = new Map<string, number | undefined>();
  /** Resources this session deleted: checked for referrers before commit. */
  readonly deleted = new Map<string, { resourceType: string; id: string; compartment: string }>();
}

const key = (type: string, id: string) => `${type}/${id}`;

/**
 * A transaction's entries may reference each other in any order: the resources its later
 * entries will write count as existing from the start (the transaction fails as a whole
 * if one of them is not written).
 */
export function promiseWrites(state: IntegrityState, references: string[]): void {
  for (const k of references) if (!state.written.has(k)) state.written.set(k, { deleted: false, versionId: Number.MAX_SAFE_INTEGER });
}

/** Refuses writes whose references do not resolve, or whose national identifiers another resource holds. */
export async function checkWritesIntegrity(session: Session, state: IntegrityState, writes: VersionWrite[]): Promise<void> {
  // many writes at once (a bulk load's batch): their lookups and claims in one statement each
  const claimed = writes.length > 1 ? await prefetch(session, state, writes) : undefined;
  for (const w of writes) {
    if (w.deleted) {
      state.written.set(key(w.resourceType, w.id), { deleted: true, versionId: w.versionId });
      state.deleted.set(key(w.resourceType, w.id), { resourceType: w.resourceType, id: w.id, compartment: w.compartment });
      continue;
    }
    await checkReferences(session, state, w);
    if (claimsUniqueIdentifiers(w.resourceType)) await checkClaims(session, w, claimed);
    state.written.set(key(w.resourceType, w.id), { deleted: false, versionId: w.versionId });
    state.deleted.delete(key(w.resourceType, w.id));
  }
}

/**
 * For several writes: the targets of their references looked up in one statement (as each
 * write would, into the session's cache), and their national identifiers claimed in one
 * (by owner; undefined when two of them claim the same one, then claimed one by one).
 */
async function prefetch(session: Session, state: IntegrityState, writes: VersionWrite[]): Promise<Map<string, ClaimHolder[]> | undefined> {
  const wanted = new Map<string, { resourceType: string; id: string }>();
  for (const w of writes) {
    for (const r of w.references ?? []) {
      if (r.kind !== 'local') continue;
      const k = key(r.targetType, r.targetId);
      if (!state.written.has(k) && !state.looked.has(k)) wanted.set(k, { resourceType: r.targetType, id: r.targetId });
    }
  }
  if (wanted.size > 0) {
    needsTransaction(session);
    const found = await currentTargetsOfTypes(session, [...wanted.values()], session.visibility);
    for (const k of wanted.keys()) state.looked.set(k, found.get(k));
  }
  const claiming = writes.filter((w) => !w.deleted && claimsUniqueIdentifiers(w.resourceType) && (w.claims?.length ?? 0) > 0);
  const keys = claiming.flatMap((w) => w.claims!.map((c) => `${w.resourceType}|${c.system}|${c.value}`));
  if (claiming.length < 2 || new Set(keys).size !== keys.length) return undefined;
  needsTransaction(session);
  return claimIdentifiersOfMany(
    session,
    claiming.map((w) => ({ compartment: w.compartment, resourceType: w.resourceType, id: w.id, claims: w.claims! })),
  );
}

function needsTransaction(session: Session): void {
  // the checks and the write must commit together: a lone statement on the pool cannot hold them
  if (!(session.db as { isTransaction?: boolean }).isTransaction) throw new Error('Integrity checks need the write to run in a transaction');
}

async function checkReferences(session: Session, state: IntegrityState, w: VersionWrite): Promise<void> {
  const refs = w.references ?? [];
  if (refs.length === 0) return;
  const issues: Issue[] = [];
  const contained = containedIds(w.body as Record<string, unknown>);
  const unknown = new Map<string, string[]>();
  const keptFound = new Map<string, number | undefined>();
  for (const r of refs) {
    if (r.kind === 'contained') {
      if (!contained.has(r.targetId)) issues.push({ severity: 'error', code: 'not-found', diagnostics: `Reference "${r.reference}" names no contained resource`, expression: [r.expression] });
      continue;
    }
    if (r.kind === 'placeholder') {
      issues.push({ severity: 'error', code: 'not-found', diagnostics: `Reference "${r.reference}" names the entry of a Bundle: it resolves only within a transaction whose entry has that fullUrl`, expression: [r.expression] });
      continue;
    }
    const k = key(r.targetType, r.targetId);
    if (k === key(w.resourceType, w.id) || state.written.has(k) || state.looked.has(k)) continue;
    const ids = unknown.get(r.targetType) ?? [];
    if (!ids.includes(r.targetId)) ids.push(r.targetId);
    unknown.set(r.targetType, ids);
  }
  if (unknown.size > 0) {
    needsTransaction(session);
    const targets = [...unknown].flatMap(([type, ids]) => ids.map((id) => ({ resourceType: type, id })));
    const found = await currentTargetsOfTypes(session, targets, session.visibility);
    for (const t of targets) state.looked.set(key(t.resourceType, t.id), found.get(key(t.resourceType, t.id)));
  }
  // targets the replaced version already named stay, even where this writer was not shown them
  const kept = [...(w.keptReferences ?? [])].filter((k) => state.looked.has(k) && state.looked.get(k) === undefined);
  if (kept.length > 0) {
    // one statement for them all; only for this write: another write of the session must still be able to read its targets
    const found = await currentTargetsOfTypes(session, kept.map((k) => ({ resourceType: k.slice(0, k.indexOf('/')), id: k.slice(k.indexOf('/') + 1) })), UNRESTRICTED);
    for (const k of kept) if (found.has(k)) keptFound.set(k, found.get(k));
  }
  // the Patient of the record the write check let this caller write into counts if it exists at all
  const own = key('Patient', w.compartment);
  if (w.compartment && refs.some((r) => r.kind === 'local' && key(r.targetType, r.targetId) === own) && !state.written.has(own) && state.looked.get(own) === undefined) {
    const found = await currentTargets(session, 'Patient', [w.compartment], UNRESTRICTED);
    if (found.has(w.compartment)) state.looked.set(own, found.get(w.compartment));
  }
  for (const r of refs) {
    if (r.kind !== 'local') continue;
    const k = key(r.targetType, r.targetId);
    if (k === key(w.resourceType, w.id)) continue;
    const mine = state.written.get(k);
    const current = mine ? (mine.deleted ? undefined : mine.versionId) : state.looked.get(k) ?? keptFound.get(k);
    if (current === undefined) {
      issues.push({ severity: 'error', code: 'not-found', diagnostics: `Reference "${r.reference}": ${k} does not exist on this server, is deleted, or is not readable by the caller`, expression: [r.expression] });
    } else if (r.targetVersion !== undefined && !(/^\d+$/.test(r.targetVersion) && Number(r.targetVersion) >= 1 && Number(r.targetVersion) <= current)) {
      issues.push({ severity: 'error', code: 'not-found', diagnostics: `Reference "${r.reference}": ${k} has no version ${r.targetVersion}`, expression: [r.expression] });
    }
  }
  if (issues.length > 0) throw new Unprocessable(issues);
}

async function checkClaims(session: Session, w: VersionWrite, claimed?: Map<string, ClaimHolder[]>): Promise<void> {
  const claims = w.claims ?? [];
  // what it no longer claims is released by the statement that writes the version
  if (claims.length === 0) return;
  needsTransaction(session);
  const taken = claimed ? claimed.get(key(w.resourceType, w.id)) ?? [] : await claimIdentifiers(session, { compartment: w.compartment, resourceType: w.resourceType, id: w.id }, claims);
  if (taken.length === 0) return;
  const issues: Issue[] = [];
  for (const t of taken) {
    const claim = claims.find((c) => c.system === t.system && c.value === t.value)!;
    // the holder is named only to a caller who may read it; that some holder exists is the refusal itself
    const named = (await readable(session, w.resourceType, t.resourceId)) ? ` ${w.resourceType}/${t.resourceId}` : ' another';
    issues.push({
      severity: 'error',
      code: 'duplicate',
      diagnostics: `The identifier ${t.system}|${t.value} is already held by${named === ' another' ? ` another ${w.resourceType}` : named}: one ${w.resourceType} per national identifier (correct or merge the existing one instead)`,
      expression: [claim.expression],
    });
  }
  throw new FhirError(409, issues);
}

/** Before commit: a resource this session deleted that a current resource still references fails the transaction (409). */
export async function checkDeletedTargets(session: Session, state: IntegrityState): Promise<void> {
  const targets = [...state.deleted.values()];
  if (targets.length === 0) return;
  const referrers = await referrersOf(session, targets, 20);
  if (referrers.length === 0) return;
  const named: string[] = [];
  for (const r of referrers) {
    if (named.length >= 5) break;
    if (await readable(session, r.resourceType, r.id)) named.push(`${r.resourceType}/${r.id}`);
  }
  const first = referrers[0];
  const others = referrers.length > named.length;
  throw new FhirError(409, [
    {
      severity: 'error',
      code: 'conflict',
      diagnostics:
        `${first.targetType}/${first.targetId} cannot be deleted: it is still referenced by ` +
        (named.length ? `${named.join(', ')}${others ? ' and other resources' : ''}` : 'other resources') +
        '. Delete or change those first, or ask for _cascade=delete',
    },
  ]);
}

import type { Knex } from 'knex';
import type { Actor } from '../access/actor';
import type { AuditAgent } from '../audit/auditEvent';
import { UNRESTRICTED, Visibility } from './visibility';
import { copyNewVersions } from './copyWrites';
import { fixedCompartment } from './fixedCompartment';
import { rememberCompartment } from './locationHints';
import { runStatement } from './statement';

/**
 * What the caller of a session may do: read through `visibility`, write what
 * `checkWrites` lets through (it throws the refusal). Both are required to open a session.
 */
export interface StoreAccess {
  visibility: Visibility;
  /** Who the caller is (issuer and subject), for what is bound to them (page tokens); absent for internal work. */
  caller?: string;
  /** The actor the policy decided for, for operations that ask the policy about the caller themselves; absent for internal work and test clients. */
  actor?: Actor;
  checkWrites(session: Session, writes: VersionWrite[]): Promise<void>;
  /**
   * Why a Subscription's criteria are not a search the server runs (strict handling), undefined
   * when they are (docs/decisions/010-subscriptions.md, amendment). Absent for internal work:
   * the server's status changes of a stored Subscription are not refused for its criteria.
   */
  criteriaRefusal?(criteria: Criteria): string | undefined;
  /** Who the audit trail names for this caller's accesses (docs/decisions/009-audit.md); absent for internal work, which is not audited. */
  auditAgent?: AuditAgent;
  /**
   * The notification-preference Basic of each record whose facts the policy read for this
   * request (undefined: the record has none), so that the audit writer does not read it again.
   */
  notificationPreferences?: ReadonlyMap<string, Record<string, unknown> | undefined>;
  /**
   * Where the resource the request addresses was found when its record's facts were read
   * (one statement before): a read of it addresses that compartment first, and asks the
   * locator only when the row is not there (moved since, or hidden from the caller).
   */
  addressedAt?: { resourceType: string; id: string; compartment: string };
  /**
   * Checks that the caller may ask for an interaction at all (SMART scopes), for the
   * request and for each Bundle entry; throws the refusal. Absent: no scope applies.
   */
  checkInteraction?(route: { interaction: string; resourceType?: string }, req: unknown): void;
  /**
   * Decides the records a Bundle entry addresses or names as its lone request's would be
   * (docs/decisions/031-refusal-consistency.md); throws the refusal. Absent: no policy applies.
   */
  checkEntryRecords?(session: Session, route: { interaction: string; resourceType?: string; id?: string }, req: unknown): Promise<void>;
  /**
   * Decides the caller's right to write in these records, before a submission naming them is
   * checked any further (decision 031); throws the refusal, the same for a record the caller
   * cannot know as for one nobody holds.
   */
  checkRecordsWritable?(session: Session, patientIds: string[]): Promise<void>;
  /**
   * A professional's lookup by INS of a record they may not enter (docs/decisions/033-record-lookup-by-ins.md):
   * the search answers the record's id and why, nothing else. Absent for every other request.
   */
  recordLookup?: RecordLookup;
  /**
   * For a system that deposits (decision 035): the open record holding this INS, as its
   * lookup finds it, to resolve a conditional reference `Patient?identifier=` in its writes.
   * Absent for every other caller (their conditional references are their own searches).
   */
  lookUpRecord?(session: Session, identifier: { system: string; value: string }): Promise<string | undefined>;
}

/**
 * What a lookup by INS tells: the INS as sent, the record holding it, and why a professional
 * may not enter it (decision 033); no refusal for a system that deposits (decision 035).
 */
export interface RecordLookup {
  identifier: { system: string; value: string };
  patientId: string;
  refusal?: string;
  reason?: string;
}

/** Start-up, migrations and maintenance: no caller, no restriction (grep lists every use). */
export const INTERNAL_ACCESS: StoreAccess = Object.freeze({ visibility: UNRESTRICTED, checkWrites: async () => undefined });

/** Reads restricted by a visibility, writes not checked: the search engine's own tests. */
export function readingAs(visibility: Visibility): StoreAccess {
  return { visibility, checkWrites: async () => undefined };
}
import { executeWrites, VersionWrite } from './writeVersions';
import { Forbidden, Unprocessable } from '../errors';
import { storedSubscriptionOwner } from './subscriptionQueries';
import { Criteria, parseCriteria, subscriptionDefect } from '../subscriptions/subscriptionRules';
import { checkDeletedTargets, checkWritesIntegrity, IntegrityState, promiseWrites } from './integrityChecks';

/**
 * Who a Subscription's criteria are searched as: the writer's actor (re-resolved at each
 * delivery, docs/decisions/010-subscriptions.md), or `internal` for a caller without one
 * (the unrestricted test client, refused in production).
 */
export function subscriptionOwner(access: StoreAccess): object {
  const actor = access.actor;
  if (!actor) return { kind: 'internal' };
  const fhirUser =
    actor.kind === 'admin' ? undefined : `${actor.kind === 'practitioner' ? 'Practitioner' : actor.kind === 'patient' ? 'Patient' : actor.kind === 'related-person' ? 'RelatedPerson' : 'Device'}/${actor.id}`;
  return {
    kind: actor.kind,
    subject: actor.subject,
    fhirUser,
    scopes: actor.scopes,
    ...(actor.kind === 'practitioner' ? { roleIds: actor.roles.map((r) => r.roleId) } : {}),
  };
}

/** A resource row a session returned or wrote: its record ('' outside any) and reference. */
export interface TouchedRow {
  compartment: string;
  resourceType: string;
  id: string;
  versionId?: number;
  /** The method that wrote this version; absent for a row that was read. */
  written?: VersionWrite['method'];
}

/**
 * The database handle of one interaction: a knex transaction (or the pool for a
 * single-statement interaction). In a transaction Bundle, writes are queued and
 * flushed as one bulk statement before the next read, so that reads always see
 * earlier writes while a thousand creates cost a handful of round trips.
 */
/**
 * Queued writes beyond this many are sent while the next entries are being prepared, so
 * that PostgreSQL writes one part of a large Bundle while Node validates the next one.
 */
const BACKGROUND_FLUSH_SIZE = 250;

export class Session {
  private pending: VersionWrite[] = [];
  /** The chain of writes already sent; statements reach the connection in queue order. */
  private sent: Promise<void> = Promise.resolve();
  /** What is to happen once this session's writes are committed (src/interactions/unitOfWork.ts runs them). */
  private committed: (() => void)[] = [];
  /** Checks that wait for the end of the transaction (checkBeforeCommit). */
  private readonly commitChecks: (() => Promise<void>)[] = [];
  /** The rows this session's reads returned and its writes wrote, for the audit trail (src/audit/). */
  private touchedRows: TouchedRow[] = [];
  /** What the integrity checks know of this session's writes and lookups (docs/decisions/014-integrity.md). */
  private readonly integrity = new IntegrityState();

  /**
   * `visibility`: what the caller may read; every store read of this session applies it
   * (docs/decisions/008-access-model.md). Required, so that no read can forget it.
   */
  constructor(
    readonly db: Knex | Knex.Transaction,
    readonly access: StoreAccess,
    private readonly deferWrites = false,
  ) {}

  get visibility(): Visibility {
    return this.access.visibility;
  }

  /**
   * Runs one statement. `name` makes it a prepared statement that PostgreSQL parses and
   * plans once per connection: only for fixed SQL texts (one name, one text), never for
   * the dynamic SQL of a search.
   */
  async query<T = Record<string, unknown>>(sql: string, bindings: readonly unknown[] = [], name?: string): Promise<T[]> {
    await this.flush();
    return (await runStatement<T>(this.db, sql, bindings, name)).rows;
  }

  /**
   * A statement on tables the queued writes never touch (`executeWrites` writes resources,
   * their history, locator, links, index rows and claims): sent without sending the queued
   * writes first, so that a transaction Bundle's writes still go out in bulk. Writes already
   * sent are waited for: their failure is this statement's, as with `query`.
   */
  async queryApart<T = Record<string, unknown>>(sql: string, bindings: readonly unknown[] = [], name?: string): Promise<T[]> {
    await this.sent;
    return (await runStatement<T>(this.db, sql, bindings, name)).rows;
  }

  async write(writes: VersionWrite[]): Promise<void> {
    // the caller's right to write each version is checked before anything is queued
    await this.access.checkWrites(this, writes);
    // a Subscription is searched with the access of whoever last wrote it (docs/decisions/010-subscriptions.md)
    for (const w of writes) {
      if (w.resourceType !== 'Subscription' || !w.body) continue;
      const defect = subscriptionDefect(w.body as Record<string, unknown>);
      if (defect) throw new Unprocessable([{ severity: 'error', code: 'not-supported', diagnostics: defect.message, expression: [defect.expression] }]);
      const unsearchable = this.access.criteriaRefusal?.(parseCriteria((w.body as Record<string, unknown>).criteria)!);
      if (unsearchable) throw new Unprocessable([{ severity: 'error', code: 'invalid', diagnostics: unsearchable, expression: ['Subscription.criteria'] }]);
    }
    await this.checkSubscriptionOwners(writes);
    // references resolve and national identifiers stay unique (docs/decisions/014-integrity.md)
    await checkWritesIntegrity(this, this.integrity, writes);
    // (internal work such as the dispatcher's status changes has no caller and keeps the owner)
    if (this.access.caller !== undefined) writes = writes.map((w) => (w.resourceType === 'Subscription' && !w.deleted ? { ...w, subscriptionOwner: subscriptionOwner(this.access) } : w));
    for (const w of writes) this.touchedRows.push({ compartment: w.compartment, resourceType: w.resourceType, id: w.id, versionId: w.versionId, written: w.method });
    await this.queue(writes);
    // where they are now, for the next read of them by id (only a hint: src/store/locationHints.ts)
    this.afterCommit(() => {
      for (const w of writes) if (fixedCompartment(w.resourceType, w.id) === undefined) rememberCompartment(w.resourceType, w.id, w.compartment);
    });
  }

  /**
   * The bulk loader's write (docs/decisions/024-bulk-load.md): new resources, checked as
   * `write` checks them (the caller's rights, references, national identifiers), then put
   * into the tables by COPY in this session's transaction (PostgreSQL). `audit`: the
   * server's events of the load, written with them unchecked, as `writeAudit` does.
   */
  async copyNew(writes: VersionWrite[], audit: VersionWrite[] = []): Promise<void> {
    if (!(this.db as Knex.Transaction).isTransaction) throw new Error('A copy needs a transaction');
    if (writes.some((w) => w.resourceType === 'Subscription')) throw new Error('A Subscription is written through the API');
    await this.access.checkWrites(this, writes);
    await checkWritesIntegrity(this, this.integrity, writes);
    for (const w of writes) this.touchedRows.push({ compartment: w.compartment, resourceType: w.resourceType, id: w.id, versionId: w.versionId, written: w.method });
    await this.flush();
    await copyNewVersions(this.db as Knex.Transaction, [...writes, ...audit.map((w) => ({ ...w, references: undefined }))]);
  }

  /** A Subscription is changed or deleted by its owner (or an administrator) only: its criteria run with the owner's access. */
  private async checkSubscriptionOwners(writes: VersionWrite[]): Promise<void> {
    const actor = this.access.actor;
    if (!actor || actor.kind === 'admin') return;
    for (const w of writes) {
      if (w.resourceType !== 'Subscription' || w.previousCompartment === undefined) continue;
      const owner = await storedSubscriptionOwner(this, w.previousCompartment, w.id);
      const mine = subscriptionOwner(this.access) as { fhirUser?: string };
      if (owner && owner.fhirUser !== mine.fhirUser) throw new Forbidden('A Subscription is changed or deleted by its owner only');
    }
  }

  /**
   * Writes AuditEvents as the server, not as the caller: the policy refuses AuditEvent
   * writes to every actor, so these skip `checkWrites`. Only the audit writers
   * (src/audit/auditTrail.ts, and src/audit/recordLookup.ts for a lookup by INS) call it; the events go out with the session's other writes,
   * and so do the patient's notifications of them (Communications written by the server),
   * in the same statement.
   */
  async writeAudit(events: VersionWrite[], notifications: VersionWrite[] = []): Promise<void> {
    // the server's own records of what happened are not referrers: they never keep a resource from being deleted
    await this.queue([...events, ...notifications].map((w) => ({ ...w, references: undefined })));
  }

  /** Records rows handed to the interaction by a store read (what the audit trail names). */
  touch(rows: TouchedRow[]): void {
    for (const r of rows) this.touchedRows.push(r);
  }

  /** The rows touched since the last call, handed over once (to the audit writer). */
  takeTouched(): TouchedRow[] {
    const rows = this.touchedRows;
    this.touchedRows = [];
    return rows;
  }

  private async queue(writes: VersionWrite[]): Promise<void> {
    if (this.deferWrites) {
      this.pending.push(...writes);
      if (this.pending.length >= BACKGROUND_FLUSH_SIZE) this.send();
      return;
    }
    await this.flush();
    await executeWrites(this.db, writes);
  }

  /**
   * Runs `action` once the writes of this session are committed, never if they roll back:
   * for what is derived from them in memory (the validator's conformance resources).
   */
  afterCommit(action: () => void): void {
    this.committed.push(action);
  }

  /** The actions waiting for the commit, handed over once (to the unit of work that commits). */
  takeAfterCommit(): (() => void)[] {
    const actions = this.committed;
    this.committed = [];
    return actions;
  }

  /** The resources (`Type/id`) a transaction's later entries will write: its references to them resolve. */
  willWrite(references: string[]): void {
    promiseWrites(this.integrity, references);
  }

  /** Wraps the checks left for before commit while it is set: a transaction names the entry that left each. */
  commitCheckScope: ((check: () => Promise<void>) => () => Promise<void>) | undefined;

  /**
   * A check that holds only once every entry of a transaction is written: run before commit
   * (`checkBeforeCommitting`); outside a transaction nothing else is to be written, so it runs now.
   */
  async checkBeforeCommit(check: () => Promise<void>): Promise<void> {
    if (!(this.db as Knex.Transaction).isTransaction) return check();
    this.commitChecks.push(this.commitCheckScope ? this.commitCheckScope(check) : check);
  }

  /** Before commit: nothing current still references what this session deleted (409 otherwise), and the checks left for then hold. */
  async checkBeforeCommitting(): Promise<void> {
    await this.flush();
    await checkDeletedTargets(this, this.integrity);
    for (const check of this.commitChecks.splice(0)) await check();
  }

  /** Every queued write is in the database (of this transaction) when it resolves; a failed write rejects it. */
  async flush(): Promise<void> {
    if (this.pending.length > 0) this.send();
    await this.sent;
  }

  private send(): void {
    const writes = this.pending;
    this.pending = [];
    // after a failure the chain stays rejected: later writes are not sent and flush() throws
    this.sent = this.sent.then(() => executeWrites(this.db, writes));
    // observed by the next flush(); the interaction may also fail first and roll back
    this.sent.catch(() => undefined);
  }
}

import crypto from 'node:crypto';
import { startTarget, Target } from '../../conformance/harness';
import { newVersion } from '../interactions/common';
import { historyKeys, HistoryRow, historyRows, walkedCompartments } from './historyQueries';
import { readingAs, Session } from './session';
import type { Visibility } from './visibility';
import { executeWrites } from './writeVersions';

describe('walkedCompartments: where the history of a caller limited to records walks (decision 018, amendment of 2026-12-07)', () => {
  const many = Array.from({ length: 51 }, (_, i) => `p${i}`);
  it.each([
    ['a caller who reads every record', {}, undefined, undefined],
    ['a patient: their record, and the directory for the types shared there', { compartments: ['p1'], sharedTypes: ['Practitioner'] }, undefined, ['p1', '']],
    ['a patient, a type of the directory', { compartments: ['p1'], sharedTypes: ['Practitioner'] }, 'Practitioner', ['p1', '']],
    ['a patient, a type not read in the directory', { compartments: ['p1'], sharedTypes: ['Practitioner'] }, 'Observation', ['p1']],
    ['own Subscriptions are in the directory', { compartments: ['p1'], ownSubscriptions: 'Patient/p1' }, 'Subscription', ['p1', '']],
    ['own Subscriptions, another type', { compartments: ['p1'], ownSubscriptions: 'Patient/p1' }, 'Observation', ['p1']],
    ['the directory listed among the records, once', { compartments: ['', 'p1', 'p1'] }, 'Observation', ['p1', '']],
    ['no record and nothing shared', { compartments: [] }, undefined, []],
    ['50 records', { compartments: many.slice(0, 50) }, 'Observation', many.slice(0, 50)],
    ['more than 50 records: one walk', { compartments: many }, 'Observation', undefined],
  ] as [string, Visibility, string | undefined, string[] | undefined][])('%s', (_n, v, type, expected) => {
    expect(walkedCompartments(v, type)).toEqual(expected);
  });
});

describe('historyRows walked record by record: versions of one instant in several records', () => {
  // a real database: versions written through the store with the same lastUpdated in three records
  let t: Target;
  beforeAll(async () => {
    t = await startTarget();
  });
  afterAll(() => t.close());

  it('pages of 2 over five versions sharing one instant visit each once, in the order of one page, both ways', async () => {
    const ctx = t.running!.ctx;
    const instant = new Date(Date.UTC(2031, 0, 1)).toISOString();
    const [a, b, c] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const writes = [];
    for (const p of [a, b, c]) writes.push(newVersion(ctx, { resourceType: 'Patient' }, { id: p, versionId: 1, lastUpdated: new Date(Date.UTC(2030, 0, 1)).toISOString(), method: 'POST' }));
    for (const [i, p] of [a, b, a, b, c, a].entries()) {
      writes.push(newVersion(ctx, { resourceType: 'Observation', status: 'final', code: { text: `o${i}` }, subject: { reference: `Patient/${p}` } }, { id: `${p.slice(0, 8)}-o${i}`, versionId: 1, lastUpdated: instant, method: 'POST' }));
    }
    await executeWrites(ctx.db.knex, writes);
    // a caller reading A and B (C closed to them): their history of Observations from that instant on
    const session = new Session(ctx.db.knex, readingAs({ compartments: [a, b] }));
    const q = { resourceType: 'Observation', since: instant };
    const whole = (await historyRows(session, q, 100)).map((r) => r.id);
    expect(whole.sort()).toEqual(writes.slice(3).filter((w) => w.compartment !== c).map((w) => w.id).sort());
    const forward: string[] = [];
    let page: HistoryRow[] = await historyRows(session, q, 2);
    for (;;) {
      forward.push(...page.slice(0, 2).map((r) => r.id));
      if (page.length <= 2) break;
      const last = page[1];
      page = await historyRows(session, q, 2, { keys: historyKeys(last), backwards: false });
    }
    expect(forward).toEqual((await historyRows(session, q, 100)).map((r) => r.id));
    // and back from the end
    const backward: string[] = [];
    let back = (await historyRows(session, q, 2, { keys: historyKeys((await historyRows(session, q, 100)).slice(-1)[0]), backwards: true })).reverse();
    backward.unshift(...(await historyRows(session, q, 100)).slice(-1).map((r) => r.id));
    for (;;) {
      backward.unshift(...back.slice(-2).map((r) => r.id));
      if (back.length <= 2) break;
      back = (await historyRows(session, q, 2, { keys: historyKeys(back[back.length - 2]), backwards: true })).reverse();
    }
    expect(backward).toEqual(forward);
  });
});

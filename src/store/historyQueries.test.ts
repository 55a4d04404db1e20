import { walkedCompartments } from './historyQueries';
import type { Visibility } from './visibility';

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

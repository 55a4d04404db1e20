import { groupPatientMembers, withinPeriod } from './groupMembers';

const BASE = 'https://fhir.example/fhir/';
const NOW = Date.parse('2025-06-15T12:00:00Z');
const member = (reference: string, extra: Record<string, unknown> = {}) => ({ entity: { reference }, ...extra });

describe('groupPatientMembers', () => {
  it.each([
    ['a relative Patient reference', [member('Patient/a')], ['a']],
    ['an absolute one under this base', [member(`${BASE}Patient/b`)], ['b']],
    ['an absolute one on another server', [member('https://elsewhere.example/fhir/Patient/c')], []],
    ['a version-specific reference', [member('Patient/a/_history/2')], []],
    ['other member types', [member('Practitioner/p'), member('Device/d'), member('Group/g')], []],
    ['a contained or logical member', [member('#x'), { entity: { identifier: { value: '1' } } }], []],
    ['inactive true', [member('Patient/a', { inactive: true })], []],
    ['inactive false', [member('Patient/a', { inactive: false })], ['a']],
    ['a period that ended', [member('Patient/a', { period: { end: '2025-06-14T00:00:00Z' } })], []],
    ['a period ending later', [member('Patient/a', { period: { start: '2020-01-01', end: '2025-06-16' } })], ['a']],
    ['a period not yet begun', [member('Patient/a', { period: { start: '2025-07-01' } })], []],
    ['an end date of today (a date lasts all day)', [member('Patient/a', { period: { end: '2025-06-15' } })], ['a']],
    ['an end month of this month', [member('Patient/a', { period: { end: '2025-06' } })], ['a']],
    ['an end year of last year', [member('Patient/a', { period: { end: '2024' } })], []],
    ['duplicates, kept once in first order', [member('Patient/b'), member('Patient/a'), member('Patient/b')], ['b', 'a']],
    ['no member', [], []],
  ])('%s', (_what, members, expected) => {
    expect(groupPatientMembers({ resourceType: 'Group', member: members }, BASE, NOW)).toEqual(expected);
  });

  it('a Group without member element has none', () => {
    expect(groupPatientMembers({ resourceType: 'Group', type: 'person', actual: true }, BASE, NOW)).toEqual([]);
  });
});

describe('withinPeriod', () => {
  it.each([
    [undefined, true],
    [{}, true],
    [{ start: '2025-06-15T12:00:00Z' }, true],
    [{ start: '2025-06-15T12:00:01Z' }, false],
    [{ end: '2025-06-15T11:59:59Z' }, false],
    [{ end: '2025-06-15T12:00:00+01:00' }, false],
    [{ end: '2025-06-15T13:00:00+01:00' }, true],
    [{ start: '2025-06-15' }, true],
    [{ start: '2025-06-16' }, false],
    [{ end: '2025-06-15' }, true],
    [{ end: '2025-06-14' }, false],
    [{ end: 'not a date' }, true],
  ])('%j → %s', (period, expected) => {
    expect(withinPeriod(period, NOW)).toBe(expected);
  });
});

import { dateRange, isValidFhirDate, parseFhirDate } from './dateRange';

describe('dateRange', () => {
  it.each([
    // value, low, high
    ['2020', '2020-01-01T00:00:00.000Z', '2020-12-31T23:59:59.999Z'],
    ['2020-02', '2020-02-01T00:00:00.000Z', '2020-02-29T23:59:59.999Z'], // leap year
    ['2021-02', '2021-02-01T00:00:00.000Z', '2021-02-28T23:59:59.999Z'],
    ['2020-12', '2020-12-01T00:00:00.000Z', '2020-12-31T23:59:59.999Z'],
    ['2020-03-15', '2020-03-15T00:00:00.000Z', '2020-03-15T23:59:59.999Z'],
    ['2020-03-15T10:30:00Z', '2020-03-15T10:30:00.000Z', '2020-03-15T10:30:00.999Z'],
    ['2020-03-15T10:30:00+02:00', '2020-03-15T08:30:00.000Z', '2020-03-15T08:30:00.999Z'],
    ['2020-03-15T23:30:00-05:00', '2020-03-16T04:30:00.000Z', '2020-03-16T04:30:00.999Z'],
    ['2020-03-15T10:30:00', '2020-03-15T10:30:00.000Z', '2020-03-15T10:30:00.999Z'], // no tz -> UTC
    ['2020-03-15T10:30', '2020-03-15T10:30:00.000Z', '2020-03-15T10:30:59.999Z'], // minute precision (search)
    ['2020-03-15T10:30:00.123Z', '2020-03-15T10:30:00.123Z', '2020-03-15T10:30:00.123Z'], // instant
    ['2020-03-15T10:30:00.1234+01:00', '2020-03-15T09:30:00.123Z', '2020-03-15T09:30:00.123Z'],
    ['2020-03-15T10:30:00.5Z', '2020-03-15T10:30:00.500Z', '2020-03-15T10:30:00.599Z'],
    ['0050', '0050-01-01T00:00:00.000Z', '0050-12-31T23:59:59.999Z'], // no 19xx mapping
  ])('%s', (value, low, high) => {
    expect(dateRange(value)).toEqual({ low, high });
  });

  it.each(['', '20', '2020-13', '2020-00', '2021-02-29', '2020-04-31', '2020-01-01T25:00:00Z', '2020-01-01T10', '2020-01-01T10:61:00Z',
    '2020-01-01T10:00:00+15:00', '2020-01-01 10:00:00', 'abcd', '2020-1-1', 'ge2020'])('rejects %j', (value) => {
    expect(dateRange(value)).toBeUndefined();
    expect(isValidFhirDate(value)).toBe(false);
  });

  it('accepts valid values', () => {
    expect(isValidFhirDate('2020')).toBe(true);
    expect(isValidFhirDate('2024-02-29')).toBe(true);
    expect(isValidFhirDate('2020-01-01T00:00:00.000+14:00')).toBe(true);
  });

  it('reports precision and timezone', () => {
    expect(parseFhirDate('2020-03')).toMatchObject({ precision: 'month', hasTimezone: false });
    expect(parseFhirDate('2020-03-01T00:00:00Z')).toMatchObject({ precision: 'second', hasTimezone: true });
  });
});

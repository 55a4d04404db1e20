/**
 * Order between values of the same FHIR type, for minValue / maxValue limits (profiles and
 * Questionnaire items): numbers, dates and dateTimes (partial dates on their common
 * precision), times, and Quantities (equal units, else converted through UCUM). When the
 * order cannot be told for sure the answer is undefined: no error is raised on a guess.
 */

export type Comparison = { order: number; incompatible?: undefined } | { order?: undefined; incompatible: string };

/** What an ordered value is, as far as comparing it goes: values of different kinds are not compared. */
export type OrderedKind = 'number' | 'date' | 'time' | 'quantity';

/** The order of `value` (of `kind`) against `limit` (of `limitKind`); undefined when it cannot be told for sure. */
export function compareWithLimit(kind: OrderedKind | undefined, value: any, limitKind: OrderedKind | undefined, limit: any): Comparison | undefined {
  if (kind === undefined || kind !== limitKind) return undefined;
  if (kind === 'number') return typeof value === 'number' && typeof limit === 'number' ? { order: Math.sign(value - limit) } : undefined;
  if (kind === 'quantity') return compareQuantities(value, limit);
  const order = kind === 'date' ? compareDateTimes(value, limit) : compareTimes(value, limit);
  return order === undefined ? undefined : { order };
}

const DATE_PREFIX = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** Dates and dateTimes in order: partial dates on their common precision (equal there and finer on one side: undecided). */
export function compareDateTimes(a: unknown, b: unknown): number | undefined {
  if (typeof a !== 'string' || typeof b !== 'string') return undefined;
  if (DATE_TIME.test(a) && DATE_TIME.test(b)) {
    const x = Date.parse(a);
    const y = Date.parse(b);
    return Number.isNaN(x) || Number.isNaN(y) ? undefined : Math.sign(x - y);
  }
  const day = (s: string) => (DATE_TIME.test(s) ? s.slice(0, 10) : DATE_PREFIX.test(s) ? s : undefined);
  const x = day(a);
  const y = day(b);
  if (x === undefined || y === undefined) return undefined;
  const n = Math.min(x.length, y.length);
  const c = Math.sign(x.slice(0, n).localeCompare(y.slice(0, n)));
  // a dateTime's day depends on its time zone: next to a date's day, the order is not sure
  const mixed = DATE_TIME.test(a) !== DATE_TIME.test(b);
  if (c !== 0 && mixed && n === 10 && Math.abs(Date.parse(`${x}T00:00:00Z`) - Date.parse(`${y}T00:00:00Z`)) <= 86400000) return undefined;
  if (c !== 0) return c;
  // same on the common precision: equal only when both are dates of that same precision
  return x.length === y.length && !DATE_TIME.test(a) && !DATE_TIME.test(b) ? 0 : undefined;
}

const UCUM = 'http://unitsofmeasure.org';

interface UcumUtils {
  convertUnitTo(from: string, value: number, to: string): { status: string; toVal: number | null; msg: string[] };
}
// the UCUM tables take time to load: only when two quantities in different units are compared
let ucum: UcumUtils | undefined;
function ucumUtils(): UcumUtils {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  ucum ??= (require('@lhncbc/ucum-lhc') as { UcumLhcUtils: { getInstance(): UcumUtils } }).UcumLhcUtils.getInstance();
  return ucum;
}

export function compareQuantities(a: any, b: any): Comparison | undefined {
  if (typeof a?.value !== 'number' || typeof b?.value !== 'number') return undefined;
  const sameUnit =
    (typeof a.code === 'string' && a.code === b.code && (a.system ?? UCUM) === (b.system ?? UCUM)) ||
    (a.code === undefined && b.code === undefined && (a.unit ?? '') === (b.unit ?? ''));
  if (sameUnit) return { order: Math.sign(a.value - b.value) };
  const ucumCoded = (q: any) => typeof q.code === 'string' && (q.system === UCUM || q.system === undefined);
  if (!ucumCoded(a) || !ucumCoded(b)) return undefined;
  const converted = ucumUtils().convertUnitTo(a.code, a.value, b.code);
  if (converted.status === 'succeeded' && typeof converted.toVal === 'number') {
    // conversions go through floating point: 10000 m is 10 km, not 10.000000000000002
    const v = Number(converted.toVal.toPrecision(12));
    return { order: Math.sign(v - b.value) };
  }
  return { incompatible: `the units ${a.code} and ${b.code} are not comparable` };
}

const TIME = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?$/;

/** Times of day in order (hh:mm:ss[.fff]). */
export function compareTimes(a: unknown, b: unknown): number | undefined {
  if (typeof a !== 'string' || typeof b !== 'string') return undefined;
  const x = TIME.exec(a);
  const y = TIME.exec(b);
  if (!x || !y) return undefined;
  const seconds = (m: RegExpExecArray) => Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4] ?? 0);
  return Math.sign(seconds(x) - seconds(y));
}

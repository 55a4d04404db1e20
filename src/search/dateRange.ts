/**
 * FHIR date / dateTime / instant values as the instant range their precision covers.
 *
 * `2020`                        -> [2020-01-01T00:00:00.000Z, 2020-12-31T23:59:59.999Z]
 * `2020-02`                     -> [2020-02-01T00:00:00.000Z, 2020-02-29T23:59:59.999Z]
 * `2020-02-03`                  -> whole UTC day
 * `2020-02-03T10:00:00+02:00`   -> [2020-02-03T08:00:00.000Z, 2020-02-03T08:00:00.999Z]
 * `2020-02-03T10:00:00.123Z`    -> [.123, .123]
 *
 * Values without a timezone (dates, and leniently dateTimes with a time but no
 * offset) are taken as UTC. Minute precision (`2020-02-03T10:00`, allowed in
 * search values) covers the whole minute. Fractional seconds beyond milliseconds
 * are truncated. Used by extraction (index rows) and by the query parser
 * (search values such as `ge2020-03`, once the prefix is stripped).
 */

const DATE_RE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export type DatePrecision = 'year' | 'month' | 'day' | 'minute' | 'second' | 'millisecond';

export interface ParsedFhirDate {
  /** Epoch milliseconds of the first instant covered. */
  lowMs: number;
  /** Epoch milliseconds of the last instant covered (inclusive). */
  highMs: number;
  precision: DatePrecision;
  /** True when the value carried an explicit timezone (Z or offset). */
  hasTimezone: boolean;
}

function utcMs(y: number, monthIndex: number, day: number, h = 0, mi = 0, s = 0, ms = 0): number {
  // Date.UTC maps years 0..99 to 1900..1999: use setUTCFullYear instead.
  const d = new Date(0);
  d.setUTCFullYear(y, monthIndex, day);
  d.setUTCHours(h, mi, s, ms);
  return d.getTime();
}

function daysInMonth(y: number, month1: number): number {
  return new Date(utcMs(y, month1, 0)).getUTCDate();
}

/** Parses a FHIR date/dateTime/instant (or a search date value). Undefined when malformed. */
export function parseFhirDate(value: string): ParsedFhirDate | undefined {
  if (typeof value !== 'string') return undefined;
  const m = DATE_RE.exec(value.trim());
  if (!m) return undefined;
  const y = Number(m[1]);
  const mo = m[2] !== undefined ? Number(m[2]) : undefined;
  const d = m[3] !== undefined ? Number(m[3]) : undefined;
  const h = m[4] !== undefined ? Number(m[4]) : undefined;
  const mi = m[5] !== undefined ? Number(m[5]) : undefined;
  let s = m[6] !== undefined ? Number(m[6]) : undefined;
  const frac = m[7];
  const tz = m[8];

  if (mo !== undefined && (mo < 1 || mo > 12)) return undefined;
  if (d !== undefined && (d < 1 || d > daysInMonth(y, mo as number))) return undefined;
  if (h !== undefined && h > 23) return undefined;
  if (mi !== undefined && mi > 59) return undefined;
  if (s !== undefined) {
    if (s > 60) return undefined;
    if (s === 60) s = 59; // leap second: clamp
  }

  let offsetMs = 0;
  if (tz !== undefined && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const oh = Number(tz.slice(1, 3));
    const om = Number(tz.slice(4, 6));
    if (oh > 14 || om > 59) return undefined;
    offsetMs = sign * (oh * 60 + om) * 60000;
  }

  let lowMs: number;
  let highMs: number;
  let precision: DatePrecision;
  if (mo === undefined) {
    precision = 'year';
    lowMs = utcMs(y, 0, 1);
    highMs = utcMs(y + 1, 0, 1) - 1;
  } else if (d === undefined) {
    precision = 'month';
    lowMs = utcMs(y, mo - 1, 1);
    highMs = utcMs(y, mo, 1) - 1;
  } else if (h === undefined) {
    precision = 'day';
    lowMs = utcMs(y, mo - 1, d);
    highMs = utcMs(y, mo - 1, d + 1) - 1;
  } else if (s === undefined) {
    precision = 'minute';
    lowMs = utcMs(y, mo - 1, d, h, mi as number);
    highMs = lowMs + 60000 - 1;
  } else if (frac === undefined) {
    precision = 'second';
    lowMs = utcMs(y, mo - 1, d, h, mi as number, s);
    highMs = lowMs + 999;
  } else {
    precision = 'millisecond';
    const ms = Number((frac + '00').slice(0, 3));
    lowMs = utcMs(y, mo - 1, d, h, mi as number, s, ms);
    highMs = frac.length >= 3 ? lowMs : lowMs + (frac.length === 1 ? 99 : 9);
  }
  lowMs -= offsetMs;
  highMs -= offsetMs;
  if (!Number.isFinite(lowMs) || !Number.isFinite(highMs)) return undefined;
  return { lowMs, highMs, precision, hasTimezone: tz !== undefined };
}

/** The inclusive [low, high] instant range (ISO, UTC, ms) covered by a FHIR date value; undefined if malformed. */
export function dateRange(value: string): { low: string; high: string } | undefined {
  const p = parseFhirDate(value);
  if (!p) return undefined;
  return { low: new Date(p.lowMs).toISOString(), high: new Date(p.highMs).toISOString() };
}

/** True when `value` is a well-formed FHIR date, dateTime or instant (lenient: time without offset, minute precision). */
export function isValidFhirDate(value: string): boolean {
  return parseFhirDate(value) !== undefined;
}

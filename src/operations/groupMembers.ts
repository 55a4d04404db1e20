import { localTarget } from '../referenceString';

/**
 * The patients a Group export reads (docs/decisions/030-groups.md): the ids of the Patients
 * that `member.entity` names on this server (relative, or absolute under `baseUrl`, which
 * ends with `/`), in the order first named, each once. R4 says a member with `inactive`
 * true is "no longer in the group" and `period` is "the period that the member was in the
 * group": such a member is left out when `inactive` is true, when its period ended before
 * `now`, or when it starts after `now`. Other types of member (Practitioner, Device, a
 * nested Group) are not patients and are not expanded. Pure.
 */
export function groupPatientMembers(group: Record<string, unknown>, baseUrl: string, now: number): string[] {
  const out = new Set<string>();
  for (const member of Array.isArray(group.member) ? (group.member as Record<string, any>[]) : []) {
    if (!member || typeof member !== 'object' || member.inactive === true) continue;
    if (!withinPeriod(member.period, now)) continue;
    const reference = member.entity?.reference;
    const target = typeof reference === 'string' ? localTarget(reference, baseUrl) : undefined;
    if (target?.resourceType === 'Patient' && target.version === undefined) out.add(target.id);
  }
  return [...out];
}

/**
 * Whether `now` lies within a FHIR Period. Its bounds are dateTimes of any precision: a
 * start is taken at its earliest instant and an end at its latest (an end of `2024-03`
 * lasts through March), so that a member is dropped only once their period is surely over.
 */
export function withinPeriod(period: unknown, now: number): boolean {
  if (!period || typeof period !== 'object') return true;
  const { start, end } = period as { start?: unknown; end?: unknown };
  if (typeof start === 'string') {
    const from = bound(start, 'earliest');
    if (from !== undefined && now < from) return false;
  }
  if (typeof end === 'string') {
    const to = bound(end, 'latest');
    if (to !== undefined && now > to) return false;
  }
  return true;
}

/** The earliest or latest instant a FHIR date or dateTime of any precision can mean; undefined when it is none. */
function bound(value: string, which: 'earliest' | 'latest'): number | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, hh] = m;
  if (hh !== undefined) {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  // a date without a time has no zone: its earliest is the start of that day where it begins first (UTC+14), its latest the end where it ends last (UTC-12)
  const year = Number(y);
  const month = mo === undefined ? (which === 'earliest' ? 0 : 11) : Number(mo) - 1;
  const day = d === undefined ? (which === 'earliest' ? 1 : new Date(Date.UTC(year, month + 1, 0)).getUTCDate()) : Number(d);
  return which === 'earliest' ? Date.UTC(year, month, day) - 14 * 3600_000 : Date.UTC(year, month, day + 1) - 1 + 12 * 3600_000;
}

import { localTarget } from '../referenceString';
import { parseFhirDate } from '../search/dateRange';

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
 * Whether `now` lies within a FHIR Period. Its bounds are dateTimes of any precision, read
 * as every date of the server is (src/search/dateRange.ts, a date without a zone in UTC):
 * a start counts from its first instant, an end lasts to its last (an end of `2024-03`
 * lasts through March), so that a member is dropped only once their period is over. A
 * bound that is no date is ignored (the validator refuses one on write).
 */
export function withinPeriod(period: unknown, now: number): boolean {
  if (!period || typeof period !== 'object') return true;
  const { start, end } = period as { start?: unknown; end?: unknown };
  const from = typeof start === 'string' ? parseFhirDate(start)?.lowMs : undefined;
  const to = typeof end === 'string' ? parseFhirDate(end)?.highMs : undefined;
  return (from === undefined || now >= from) && (to === undefined || now <= to);
}

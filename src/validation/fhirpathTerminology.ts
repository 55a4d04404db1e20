/**
 * FHIRPath's memberOf() (R4 fhirpath.html, FHIR-specific functions) for the invariants the
 * validator evaluates: "when invoked on a code-valued element, returns true if the code is a
 * member of the given valueset; when invoked on a concept-valued element, returns true if any
 * code in the concept is a member of the given valueset".
 *
 * FHIRPath.js's own memberOf() asks a terminology server; here membership is decided by the
 * validator's terminology (the value sets and code systems it holds, with the definitions of the
 * validation). FHIRPath.js calls user functions without its evaluation context, so the decision
 * is set for the time of one (synchronous) evaluation by withMembership(); outside one, or when
 * the value set cannot be expanded here, the result is empty, so the invariant is not reported
 * as failed.
 */

/** Membership of one code: true / false / undefined (cannot decide). */
export type MembershipCheck = (valueSet: string, system: string | undefined, code: string) => boolean | undefined;

let current: MembershipCheck | undefined;

/** Runs one synchronous FHIRPath evaluation with memberOf() decided by `check`. */
export function withMembership<T>(check: MembershipCheck | undefined, evaluation: () => T): T {
  const previous = current;
  current = check;
  try {
    return evaluation();
  } finally {
    current = previous;
  }
}

/** FHIRPath.js hands complex values over as its resource nodes: their JSON is `data`. */
const plain = (v: any): any => (v !== null && typeof v === 'object' && 'fhirNodeDataType' in v && 'data' in v ? v.data : v);

function codings(value: any): { system?: string; code: string }[] | undefined {
  if (typeof value === 'string') return [{ code: value }];
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value.coding)) return value.coding.filter((c: any) => typeof c?.code === 'string');
  if (typeof value.code === 'string') return [{ system: typeof value.system === 'string' ? value.system : undefined, code: value.code }];
  return undefined;
}

/** true when one coding is a member, false when none is and each is decided, else undecided */
export function memberOfValue(check: MembershipCheck, valueSet: string, value: any): boolean | undefined {
  const list = codings(plain(value));
  if (!list) return undefined;
  let undecided = false;
  for (const c of list) {
    const r = check(valueSet, c.system, c.code);
    if (r === true) return true;
    if (r === undefined) undecided = true;
  }
  return undecided ? undefined : false;
}

export const terminologyFunctions = {
  memberOf: {
    fn(coll: unknown[], valueSet: unknown): boolean[] {
      const check = current;
      const url = Array.isArray(valueSet) ? valueSet[0] : valueSet;
      if (!check || coll.length !== 1 || typeof plain(url) !== 'string') return [];
      const r = memberOfValue(check, plain(url), coll[0]);
      return r === undefined ? [] : [r];
    },
    arity: { 1: ['String'] },
  },
};

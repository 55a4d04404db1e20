import resourceTypesData from '../../conformance/capability/resource-types.json';
import { eventAsSeen, Hidden, namedBy } from '../audit/trailView';
import { byKeys, keyArrays, locateAll } from './locator';
import { constraintConditions, SqlContext } from './searchSql';
import type { Session } from './session';

/**
 * AuditEvents as a reader on the patient's side sees them (docs/decisions/009-audit.md):
 * every store read that hands AuditEvent bodies to an interaction passes them here. One
 * statement per response looks up, with the reader's own visibility, every resource the
 * events name; the events come back without what is hidden. Other readers pay nothing.
 */

const TRAIL = 'AuditEvent';
/** The types this server stores: an id-shaped word of a query may be the id of any of them. */
const TYPES: string[] = resourceTypesData.resourceTypes.map((t: { type: string }) => t.type);
/**
 * Beyond this many (type, word) pairs to look up, the query and outcome texts are left out
 * without looking (a safe answer for a page of events with very many distinct words).
 */
const MAX_PAIRS = 20000;

type Json = Record<string, any>;

/** Whether these rows need the filter at all: a reader on the patient's side, and an AuditEvent among them. */
export function trailFilterApplies(session: Session, types: string[]): boolean {
  return session.visibility.trailAsSeen === true && types.includes(TRAIL);
}

/**
 * The bodies, each AuditEvent among them as the reader may see it. `types[i]` is the type
 * of `bodies[i]`; null bodies (deletions) stay null.
 */
export async function trailAsSeen(session: Session, types: string[], bodies: (string | null)[]): Promise<(string | null)[]> {
  if (!trailFilterApplies(session, types)) return bodies;
  const events = new Map<number, Json>();
  bodies.forEach((body, i) => {
    if (types[i] === TRAIL && body) events.set(i, JSON.parse(body));
  });
  if (events.size === 0) return bodies;
  const references = new Set<string>();
  const words = new Set<string>();
  for (const event of events.values()) {
    const named = namedBy(event);
    named.references.forEach((r) => references.add(r));
    named.words.forEach((w) => words.add(w));
  }
  let hidden: Hidden;
  if (words.size * TYPES.length > MAX_PAIRS) {
    // too many words to look up: the texts are left out, the entities still judged one by one
    const found = await lookUp(session, [...references]);
    hidden = { visible: found.visible, hiddenId: () => true };
  } else {
    const pairs = new Set(references);
    for (const w of words) for (const t of TYPES) pairs.add(`${t}/${w}`);
    hidden = await lookUp(session, [...pairs]);
  }
  return bodies.map((body, i) => {
    const event = events.get(i);
    if (!event) return body;
    const seen = eventAsSeen(event, hidden);
    return seen === event ? body : JSON.stringify(seen);
  });
}

/** Which of these `Type/id` are stored, and which of those the reader may see. */
async function lookUp(session: Session, references: string[]): Promise<Hidden> {
  const ctx: SqlContext = { bindings: [], baseUrl: '', constraints: session.visibility };
  // the reader's own conditions, before the list of pairs in the text and in the bindings
  const visibleSql = `COALESCE((TRUE${constraintConditions(ctx, 'r', undefined)}), FALSE)`;
  // what is stored is found by the locator first (most pairs are guesses from the texts:
  // none of them is looked for in a partition), then read by its full key
  const refs = references.map((ref) => ({ resourceType: ref.slice(0, ref.indexOf('/')), id: ref.slice(ref.indexOf('/') + 1) }));
  const keys = keyArrays(await locateAll(session, refs), refs);
  ctx.bindings.push(keys[0], ...keys);
  const rows =
    keys[0] === '{}'
      ? []
      : await session.query<{ resource_type: string; id: string; visible: boolean }>(`SELECT r.resource_type, r.id, ${visibleSql} AS visible FROM resource r WHERE ${byKeys('r')}`, ctx.bindings);
  const shown = new Set<string>();
  const hiddenIds = new Set<string>();
  for (const row of rows) {
    if (row.visible) shown.add(`${row.resource_type}/${row.id}`);
    else hiddenIds.add(row.id);
  }
  return { visible: (ref) => shown.has(ref), hiddenId: (id) => hiddenIds.has(id) };
}

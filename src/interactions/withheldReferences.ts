import { checkedTargets, mayHoldWithheld, Target, WITHHELD, withheldItems, WithheldItems, withheldPointers, withholdUnreadable } from '../access/referenceRedaction';
import { decimalTexts, DecimalTexts, stringifyWithDecimals } from '../json/decimals';
import { RawJson } from '../json/rawJson';
import { readableTargets } from '../store/readableTargets';
import type { Session } from '../store/session';
import { isUnrestricted } from '../store/visibility';
import type { FhirResponse, InteractionContext } from './types';

/** A stored resource an answer carries, that may name a resource the caller cannot read. */
interface Carried {
  resource: Record<string, unknown>;
  /** Its stored text, when the answer carries it as text (decimals keep their precision from it). */
  text?: string;
  replace(text: string, resource: Record<string, unknown>): void;
}

/**
 * The answer without the references its reader cannot follow
 * (docs/decisions/013-references-to-hidden-resources.md): in a resource read by id (type
 * `resourceType`) or in the entries of a Bundle, the checked elements whose target the
 * caller cannot read are removed and the resource tagged SUBSETTED. One statement per
 * target type named; nothing at all for an unrestricted caller or an answer without such
 * references.
 */
export async function withholdUnreadableReferences(ctx: InteractionContext, session: Session, resourceType: string | undefined, res: FhirResponse): Promise<FhirResponse> {
  if (isUnrestricted(session.visibility)) return res;
  const carried = carriedResources(ctx, resourceType, res);
  if (carried.length === 0) return res;
  const baseUrl = ctx.config.baseUrl;
  const reader = readerOf(session);
  const targets = carried.flatMap((c) => checkedTargets(c.resource, baseUrl, reader));
  if (targets.length === 0) return res;
  const canRead = await readability(session, targets);
  for (const c of carried) {
    const shortened = withholdUnreadable(c.resource, baseUrl, canRead, true, reader);
    if (shortened) c.replace(stringifyWithDecimals(shortened, c.text !== undefined ? outside(decimalTexts(c.text), withheldPointers(String(c.resource.resourceType))) : undefined), shortened);
  }
  return res;
}

/** Which of these targets (named by checked elements) the caller can read: one statement per target type. */
async function readability(session: Session, targets: Target[]): Promise<(t: Target) => boolean> {
  const wanted = new Map<string, Set<string>>();
  for (const t of targets) {
    const ids = wanted.get(t.resourceType) ?? new Set<string>();
    ids.add(t.id);
    wanted.set(t.resourceType, ids);
  }
  const readable = new Map<string, Set<string>>();
  for (const [type, ids] of wanted) readable.set(type, await readableTargets(session, type, [...ids]));
  return (t: Target) => readable.get(t.resourceType)?.has(t.id) ?? true;
}

/**
 * A stored version as the caller reads it, to be changed (a patch applies to it), and the
 * items they were not shown, which their write keeps (restoreWithheld). Nothing is withheld
 * for an unrestricted caller or a resource without checked references.
 */
export async function asWriterReadsIt(ctx: InteractionContext, session: Session, stored: Record<string, unknown>): Promise<{ view: Record<string, unknown>; withheld: WithheldItems }> {
  const none = { view: stored, withheld: new Map() as WithheldItems };
  if (isUnrestricted(session.visibility) || WITHHELD[String(stored.resourceType)] === undefined) return none;
  const reader = readerOf(session);
  const targets = checkedTargets(stored, ctx.config.baseUrl, reader);
  if (targets.length === 0) return none;
  const canRead = await readability(session, targets);
  const withheld = withheldItems(stored, ctx.config.baseUrl, canRead, reader);
  if (withheld.size === 0) return none;
  return { view: withholdUnreadable(stored, ctx.config.baseUrl, canRead, false, reader) ?? stored, withheld };
}

/** Who reads, for the elements shown to some readers whatever they may read (an actor kind). */
const readerOf = (session: Session): string | undefined => session.access.actor?.kind;

/** The stored decimals that do not lie below a checked element (items removed there shift the paths after them). */
function outside(texts: DecimalTexts | undefined, pointers: string[]): DecimalTexts | undefined {
  if (!texts) return undefined;
  const kept = new Map([...texts].filter(([p]) => !pointers.some((w) => p === w || p.startsWith(`${w}/`))));
  return kept.size ? kept : undefined;
}

/** The resources of the checked types an answer carries: the resource read, or the Bundle's entries. */
function carriedResources(ctx: InteractionContext, resourceType: string | undefined, res: FhirResponse): Carried[] {
  const out: Carried[] = [];
  if (res.resourceText !== undefined) {
    if (resourceType && mayHoldWithheld(resourceType, res.resourceText)) {
      // a write's answer carries the version both as text and parsed (a pretty answer is printed from the latter)
      const replace = (text: string, shortened: Record<string, unknown>) => {
        res.resourceText = text;
        if (res.resource !== undefined) res.resource = shortened;
      };
      out.push({ resource: JSON.parse(res.resourceText) as Record<string, unknown>, text: res.resourceText, replace });
    }
    return out;
  }
  const bundle = res.resource as { resourceType?: unknown; entry?: unknown } | undefined;
  if (bundle?.resourceType !== 'Bundle' || !Array.isArray(bundle.entry)) return out;
  const prefix = `${ctx.config.baseUrl}/`;
  for (const entry of bundle.entry as Record<string, unknown>[]) {
    const r = entry?.resource;
    if (r instanceof RawJson) {
      const url = typeof entry.fullUrl === 'string' && entry.fullUrl.startsWith(prefix) ? entry.fullUrl.slice(prefix.length) : '';
      const type = url.split('/')[0];
      if (!mayHoldWithheld(type, r.text)) continue;
      out.push({ resource: JSON.parse(r.text) as Record<string, unknown>, text: r.text, replace: (text) => (entry.resource = new RawJson(text)) });
    } else if (r && typeof r === 'object' && typeof (r as Record<string, unknown>).resourceType === 'string') {
      const resource = r as Record<string, unknown>;
      if (WITHHELD[String(resource.resourceType)] === undefined) continue;
      out.push({ resource, replace: (_text, shortened) => (entry.resource = shortened) });
    }
  }
  return out;
}

/**
 * The trail as the patient's side reads it (docs/decisions/009-audit.md): an event shown
 * without what it names that the reader may not see. Pure: the store looks up what is
 * hidden, these functions say what to look up and what is left.
 */
import { typedId } from '../referenceString';
import { tagSubsetted } from '../subsettedTag';

export { SUBSETTED } from '../subsettedTag';
const QUERY_ROLE = '24';
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
/** `Type/id` inside a reference or a free text, with an optional base URL before and version after. */
const TYPED = /(?:^|[^A-Za-z0-9])([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})/g;

type Json = Record<string, any>;

/** `Type/id` of a reference (relative or absolute, with or without `_history`); undefined for anything else. */
export function referenceOf(reference: unknown): string | undefined {
  return typedId(reference);
}

const decode = (query: unknown) => (typeof query === 'string' ? Buffer.from(query, 'base64').toString('utf8') : '');

/** The free texts of an entity or an event that may name a resource: a query, a display. */
function textsOf(entity: Json): string[] {
  const out: string[] = [];
  if (entity.query) out.push(decode(entity.query));
  if (typeof entity.what?.display === 'string') out.push(entity.what.display);
  return out;
}

/** What a free text may name: `Type/id` references, and every id-shaped word (whose type it does not say). */
export function namesInText(text: string): { references: string[]; words: string[] } {
  let decoded = text;
  try {
    decoded = decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    // a malformed escape: the text as it is
  }
  const references = [...decoded.matchAll(TYPED)].map((m) => `${m[1]}/${m[2]}`);
  const words = decoded.split(/[^A-Za-z0-9\-.]+/).filter((w) => ID.test(w));
  return { references, words };
}

/** Everything an event may name, to be looked up with the reader's visibility. */
export function namedBy(event: Json): { references: string[]; words: string[] } {
  const references = new Set<string>();
  const words = new Set<string>();
  const add = (text: string) => {
    const n = namesInText(text);
    n.references.forEach((r) => references.add(r));
    n.words.forEach((w) => words.add(w));
  };
  for (const entity of event.entity ?? []) {
    const r = referenceOf(entity?.what?.reference);
    if (r) references.add(r);
    textsOf(entity ?? {}).forEach(add);
  }
  if (typeof event.outcomeDesc === 'string') add(event.outcomeDesc);
  for (const agent of event.agent ?? []) {
    const r = patientSideAgent(agent);
    if (r) references.add(r);
  }
  return { references: [...references], words: [...words] };
}

/** `Patient/x` or `RelatedPerson/y` when the agent is of a patient's side: another record's patient is not named to this reader. */
function patientSideAgent(agent: Json): string | undefined {
  const r = referenceOf(agent?.who?.reference);
  return r && (r.startsWith('Patient/') || r.startsWith('RelatedPerson/')) ? r : undefined;
}

/** An agent the reader may not know: what they did stays, who they are does not. */
function anonymous(agent: Json): Json {
  const { who: _who, altId: _altId, name: _name, network: _network, ...rest } = agent;
  return { ...rest, who: { display: 'Withheld from this reader' } };
}

/** What the lookup found hidden from the reader. */
export interface Hidden {
  /** `Type/id` is shown to the reader (absent: not stored, or hidden). */
  visible(reference: string): boolean;
  /** A stored resource hidden from the reader has this id. */
  hiddenId(word: string): boolean;
}

function namesHidden(text: string, hidden: Hidden): boolean {
  const n = namesInText(text);
  return n.words.some((w) => hidden.hiddenId(w)) || n.references.some((r) => !hidden.visible(r) && hidden.hiddenId(r.split('/')[1]));
}

/**
 * The event without the entities naming a resource hidden from the reader, without its query
 * when one was removed or when the query names one, with a neutral outcome text when its
 * text names one; tagged SUBSETTED when anything was left out. The same object when nothing was.
 */
export function eventAsSeen(event: Json, hidden: Hidden): Json {
  const entities: Json[] = event.entity ?? [];
  const kept: Json[] = [];
  let removed = false;
  for (const entity of entities) {
    const r = referenceOf(entity?.what?.reference);
    if (r && !hidden.visible(r)) {
      removed = true;
      continue;
    }
    kept.push(entity);
  }
  const shown: Json[] = [];
  let removedText = false;
  for (const entity of kept) {
    const isQuery = (entity.role?.code ?? entity.role?.coding?.[0]?.code) === QUERY_ROLE;
    // what was searched for may describe what the search found and the reader may not see
    if ((isQuery && removed) || textsOf(entity).some((t) => namesHidden(t, hidden))) {
      removedText = true;
      continue;
    }
    shown.push(entity);
  }
  const outcomeHidden = typeof event.outcomeDesc === 'string' && namesHidden(event.outcomeDesc, hidden);
  const agents: Json[] = event.agent ?? [];
  const agentHidden = agents.some((a) => {
    const r = patientSideAgent(a);
    return r !== undefined && !hidden.visible(r);
  });
  if (!removed && !removedText && !outcomeHidden && !agentHidden) return event;
  const out: Json = tagSubsetted(event);
  if (agentHidden) out.agent = agents.map((a) => (patientSideAgent(a) && !hidden.visible(patientSideAgent(a)!) ? anonymous(a) : a));
  // the profile wants an entity: one that says something was withheld, and nothing of it
  out.entity = shown.length ? shown : [{ what: { display: 'Withheld from this reader' }, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' } }];
  if (outcomeHidden) out.outcomeDesc = event.outcome === '0' ? 'Success' : 'Refused by the access policy';
  return out;
}

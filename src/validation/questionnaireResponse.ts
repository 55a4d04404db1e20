/**
 * QuestionnaireResponse against its Questionnaire (R4), after the HL7 Java
 * validator (QuestionnaireValidator / EnableWhenEvaluator):
 *
 * - every item.linkId exists in the Questionnaire at that place in the hierarchy
 *   (unknown linkId, item in the wrong place, items out of order: errors);
 * - a non-repeating item appears once, and has at most one answer;
 * - answer value[x] type matches the item type; group and display items have no
 *   answers; a question's child items are under answer.item, not item;
 * - choice / open-choice answers are among answerOption (Coding: system + code;
 *   integer / date / time / string / Reference options by value; open-choice
 *   accepts any string), or in answerValueSet when a terminology callback is given
 *   and knows the value set (otherwise not checked);
 * - maxLength of string / text / url / open-choice string answers; the item-constraint
 *   extensions (questionnaireItemRules.ts): minValue / maxValue, maxDecimalPlaces,
 *   minLength, regex, mimeType, maxSize, unitOption / unitValueSet, minOccurs / maxOccurs;
 * - answerOption restricts the answers of non-choice items too (integer, date, time,
 *   string); an optionExclusive option is the only answer; a coded answer's display
 *   matches the code's in the answerValueSet (warning);
 * - `question` (abstract), `group` and `display` items have no answers;
 * - required items are answered: error when status is completed or amended,
 *   warning otherwise (in-progress, stopped …);
 * - an item disabled by its enableWhen (exists, =, !=, >, <, >=, <=; enableBehavior
 *   all / any) has no answers or child items.
 *
 * A false error is worse than a missed one: whenever an enableWhen cannot be
 * decided for sure (enableWhenExpression, several conditions without
 * enableBehavior, values of different types or precisions, orderings of codes or
 * strings, != over no answers …) the item counts as neither enabled nor disabled:
 * no "required" and no "disabled" error is raised for it. A text that differs from
 * the Questionnaire's is only a warning (the Java validator makes it an error).
 * An unknown Questionnaire gives a warning, never an error.
 */
import type { Issue, IssueCode } from '../errors';
import type { DomainCheck, DomainContext } from './engine';
import { answerRuleIssues, extensionValues } from './questionnaireItemRules';

type Tri = boolean | undefined;

export interface QuestionnaireResponseCheckOptions {
  /**
   * Is system|code in the value set? true / false when known; undefined when the
   * value set (or its content) is not available: the answer is then not checked.
   */
  valueSetContains?: (valueSet: string, system: string | undefined, code: string) => boolean | undefined;
  /** Why a coded answer's display is wrong for the code in the value set; undefined when right or unknown. */
  valueSetDisplayProblem?: (valueSet: string, system: string | undefined, code: string, display: string) => string | undefined;
}

function splitCanonical(canonical: string): [string, string | undefined] {
  const bar = canonical.indexOf('|');
  return bar >= 0 ? [canonical.slice(0, bar), canonical.slice(bar + 1)] : [canonical, undefined];
}

/** Finds Questionnaires known to a Validator by canonical URL, optionally `|version` (without one: the last registered). */
export function questionnaireLookup(validator: { conformanceResources(t: 'Questionnaire'): any[] }): (canonical: string) => any | undefined {
  return (canonical: string) => {
    if (typeof canonical !== 'string' || !canonical) return undefined;
    const [url, version] = splitCanonical(canonical);
    const matching = validator.conformanceResources('Questionnaire').filter((q) => q && q.url === url);
    if (version !== undefined) return matching.find((q) => q.version === version);
    return matching[matching.length - 1];
  };
}

/** `valueSetDisplayProblem` for questionnaireResponseCheck from a Validator's validateCode. */
export function valueSetDisplay(validator: {
  validateCode(args: { url?: string; system?: string; code: string; display?: string }): { result: boolean; message?: string };
}): NonNullable<QuestionnaireResponseCheckOptions['valueSetDisplayProblem']> {
  return (valueSet, system, code, display) => {
    const r = validator.validateCode({ url: valueSet, ...(system ? { system } : {}), code, display });
    return !r.result && /^Wrong Display Name/.test(r.message ?? '') ? r.message : undefined;
  };
}

/**
 * `valueSetContains` for questionnaireResponseCheck from a Validator's validateCode:
 * only a definite "not in the value set" is false.
 */
export function valueSetMembership(validator: {
  validateCode(args: { url?: string; system?: string; code: string }): { result: boolean; message?: string };
}): NonNullable<QuestionnaireResponseCheckOptions['valueSetContains']> {
  return (valueSet, system, code) => {
    const r = validator.validateCode({ url: valueSet, ...(system ? { system } : {}), code });
    if (r.result) return true;
    return /is not in the value set/.test(r.message ?? '') ? false : undefined;
  };
}

const ANSWER_TYPES: Record<string, string[]> = {
  boolean: ['Boolean'],
  decimal: ['Decimal'],
  integer: ['Integer'],
  date: ['Date'],
  dateTime: ['DateTime'],
  time: ['Time'],
  string: ['String'],
  text: ['String'],
  url: ['Uri'],
  choice: ['Coding'],
  'open-choice': ['Coding', 'String'],
  attachment: ['Attachment'],
  reference: ['Reference'],
  quantity: ['Quantity'],
};
const MAX_LENGTH_TYPES = new Set(['string', 'text', 'url', 'open-choice']);
const ENABLE_WHEN_EXPRESSION = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression';

const arr = (x: unknown): any[] => (Array.isArray(x) ? x.filter((y) => y && typeof y === 'object') : []);
/** value[x] suffix of an answer / answerOption / enableWhen (`Coding` for valueCoding) */
function choiceSuffix(o: any, prefix: 'value' | 'answer'): string | undefined {
  for (const k of Object.keys(o ?? {})) {
    if (k.startsWith(prefix) && k.length > prefix.length && /[A-Z]/.test(k[prefix.length])) return k.slice(prefix.length);
  }
  return undefined;
}
const hasValue = (answer: any) => choiceSuffix(answer, 'value') !== undefined;

interface QIndex {
  byLinkId: Map<string, any>;
  /** ancestors of each Questionnaire item, outermost first */
  ancestors: Map<any, any[]>;
}

function indexQuestionnaire(q: any): QIndex {
  const byLinkId = new Map<string, any>();
  const ancestors = new Map<any, any[]>();
  const walk = (items: any[], chain: any[]) => {
    for (const it of arr(items)) {
      if (typeof it.linkId === 'string' && !byLinkId.has(it.linkId)) byLinkId.set(it.linkId, it);
      ancestors.set(it, chain);
      walk(it.item, [...chain, it]);
    }
  };
  walk(q.item, []);
  return { byLinkId, ancestors };
}

/** A Questionnaire item answered at some place in the response: the QR item instances of its ancestors. */
interface Frame {
  q: any;
  node: any;
}

interface State {
  q: any;
  qr: any;
  index: QIndex;
  complete: boolean;
  issues: Issue[];
  options: QuestionnaireResponseCheckOptions;
}

export function questionnaireResponseCheck(
  findQuestionnaire: (canonical: string) => any | undefined,
  options: QuestionnaireResponseCheckOptions = {},
): DomainCheck {
  return {
    name: 'questionnaire-response',
    appliesTo: (resource: any) => resource?.resourceType === 'QuestionnaireResponse',
    check(qr: any, context?: DomainContext): Issue[] {
      const canonical = qr.questionnaire;
      if (typeof canonical !== 'string' || !canonical) return [];
      let q: any;
      if (canonical.startsWith('#')) {
        q = arr(qr.contained).find((c) => c.resourceType === 'Questionnaire' && c.id === canonical.slice(1));
      } else {
        // a Questionnaire known to the server, else one carried in the same Bundle
        const [url, version] = splitCanonical(canonical);
        q =
          findQuestionnaire(canonical) ??
          arr(context?.bundleResources).filter((r) => r.resourceType === 'Questionnaire' && r.url === url && (version === undefined || r.version === version)).pop();
      }
      if (!q || typeof q !== 'object') {
        return [
          {
            severity: 'warning',
            code: 'not-found',
            diagnostics: `Questionnaire ${canonical} is not known, answers not checked`,
            expression: ['QuestionnaireResponse.questionnaire'],
          },
        ];
      }
      const st: State = {
        q,
        qr,
        index: indexQuestionnaire(q),
        complete: qr.status === 'completed' || qr.status === 'amended',
        issues: [],
        options,
      };
      checkItems(st, arr(q.item), qr, 'QuestionnaireResponse', [], true);
      return st.issues;
    },
  };
}

function push(st: State, severity: Issue['severity'], code: IssueCode, diagnostics: string, expression: string): void {
  st.issues.push({ severity, code, diagnostics, expression: [expression] });
}

function missingRequired(st: State, qItem: any, path: string): void {
  push(
    st,
    st.complete ? 'error' : 'warning',
    'required',
    `No response answer found for required item '${qItem.linkId}'${st.complete ? '' : ` (status ${st.qr.status ?? 'missing'}: not an error until completed)`}`,
    path,
  );
}

/**
 * The items of `container` (the response, a group item or an answer) against the Questionnaire items
 * `qItems` expected there. `frames`: the ancestors' instances (null when the place is wrong, so
 * enableWhen cannot be located); `ctxEnabled`: whether the container is enabled.
 */
function checkItems(st: State, qItems: any[], container: any, path: string, frames: Frame[] | null, ctxEnabled: Tri): void {
  const present = new Map<string, { el: any; path: string }[]>();
  let lastIndex = -1;
  arr(container.item).forEach((el, i) => {
    const itemPath = `${path}.item[${i}]`;
    if (typeof el.linkId !== 'string' || !el.linkId) return; // linkId 1..1: reported by the structure validation
    const index = qItems.findIndex((qi) => qi.linkId === el.linkId);
    if (index < 0) {
      const elsewhere = st.index.byLinkId.get(el.linkId);
      if (elsewhere) {
        push(st, 'error', 'structure', `Structural Error: item with linkId '${el.linkId}' is in the wrong place`, itemPath);
        checkItem(st, elsewhere, el, itemPath, null, undefined);
      } else {
        push(st, 'error', 'not-found', `LinkId '${el.linkId}' not found in questionnaire`, itemPath);
      }
      return;
    }
    if (index < lastIndex) push(st, 'error', 'structure', `Structural Error: items are out of order (item '${el.linkId}')`, itemPath);
    lastIndex = index;
    // an item with neither answer nor child item counts as absent (as in the Java validator)
    if (arr(el.answer).length || arr(el.item).length) {
      const list = present.get(el.linkId) ?? [];
      list.push({ el, path: itemPath });
      present.set(el.linkId, list);
    }
  });

  for (const qItem of qItems) {
    const own = frames ? isEnabled(st, qItem, frames) : undefined;
    const enabled = and3(ctxEnabled, own);
    const list = present.get(qItem.linkId);
    if (!list) {
      if (qItem.required === true && enabled === true) missingRequired(st, qItem, path);
      continue;
    }
    if (own === false && ctxEnabled !== false) {
      for (const { path: p } of list) {
        push(st, 'error', 'business-rule', `Item '${qItem.linkId}' has answers or items although it is not enabled (enableWhen)`, p);
      }
    }
    if (list.length > 1 && qItem.repeats !== true) {
      push(st, 'error', 'invalid', `Only one response item with linkId '${qItem.linkId}' allowed (the item does not repeat)`, list[1].path);
    }
    // a repeating group is counted by its occurrences (a question by its answers, in checkItem)
    if (qItem.type === 'group') occurrenceLimits(st, qItem, list.length, 'occurrences', list[list.length - 1].path);
    for (const { el, path: p } of list) checkItem(st, qItem, el, p, frames, enabled);
  }
}

function checkItem(st: State, qItem: any, el: any, path: string, frames: Frame[] | null, enabled: Tri): void {
  if (typeof el.text === 'string' && el.text && typeof qItem.text === 'string' && el.text !== qItem.text) {
    push(st, 'warning', 'invalid', `Item '${qItem.linkId}': text '${el.text}' differs from the questionnaire's '${qItem.text}'`, path);
  }
  const type: string | undefined = typeof qItem.type === 'string' ? qItem.type : undefined;
  const answers = arr(el.answer);
  const inner: Frame[] | null = frames ? [...frames, { q: qItem, node: el }] : null;

  if (qItem.required === true && answers.length === 0 && type !== 'group' && type !== 'display' && enabled === true) {
    missingRequired(st, qItem, path);
  }
  if (answers.length > 1 && qItem.repeats !== true) {
    push(st, 'error', 'invalid', `Only one response answer allowed for item '${qItem.linkId}' (the item does not repeat)`, `${path}.answer[1]`);
  }
  if (type !== 'group' && type !== 'display' && type !== 'question' && answers.length) occurrenceLimits(st, qItem, answers.length, 'answers', path);
  exclusiveOptions(st, qItem, answers, path);
  answers.forEach((answer, j) => {
    const answerPath = `${path}.answer[${j}]`;
    if (type === 'group' || type === 'display' || type === 'question') {
      const why = type === 'question' ? 'the abstract type question' : `type ${type}`;
      push(st, 'error', 'structure', `Items of ${why} should not have answers (item '${qItem.linkId}')`, answerPath);
      return;
    }
    if (type) checkAnswer(st, qItem, type, answer, answerPath);
    checkItems(st, arr(qItem.item), answer, answerPath, inner, enabled);
  });

  if (type === 'group') {
    checkItems(st, arr(qItem.item), el, path, inner, enabled);
  } else if (arr(el.item).length) {
    push(
      st,
      'error',
      'structure',
      type === 'display'
        ? `Items of type display should not have child items (item '${qItem.linkId}')`
        : `Item '${qItem.linkId}' is a question: its child items belong in answer.item, not item`,
      path,
    );
  }
}

function optionTypes(qItem: any): string[] {
  const out: string[] = [];
  for (const o of arr(qItem.answerOption)) {
    const t = choiceSuffix(o, 'value');
    if (t && !out.includes(t)) out.push(t);
  }
  return out;
}

function checkAnswer(st: State, qItem: any, type: string, answer: any, path: string): void {
  const suffix = choiceSuffix(answer, 'value');
  if (!suffix) return;
  const base = ANSWER_TYPES[type];
  if (!base) return; // unknown item type: reported on the Questionnaire, not here
  const isChoice = type === 'choice' || type === 'open-choice';
  // R4 answerOption.value[x] may be integer | date | time | string | Coding | Reference
  const allowed = isChoice ? [...base, ...optionTypes(qItem).filter((t) => !base.includes(t))] : base;
  if (!allowed.includes(suffix)) {
    push(
      st,
      'error',
      'structure',
      `Answer value must be of type ${allowed.map(lcPrimitive).join(' or ')} for item '${qItem.linkId}' of type ${type} (found value${suffix})`,
      path,
    );
    return;
  }
  const value = answer[`value${suffix}`];
  // R4 (que-5) allows answerOption on integer, date, time and string items too: it then lists the answers allowed
  if (isChoice || arr(qItem.answerOption).length) checkOption(st, qItem, type === 'open-choice', suffix, value, path);
  for (const r of answerRuleIssues(qItem, suffix, value, { valueSetContains: st.options.valueSetContains })) push(st, r.severity, r.code, r.diagnostics, path);
  if (MAX_LENGTH_TYPES.has(type) && typeof qItem.maxLength === 'number' && typeof value === 'string') {
    const length = [...value].length;
    if (length > qItem.maxLength) {
      push(st, 'error', 'too-long', `Answer for item '${qItem.linkId}' is ${length} characters long, more than maxLength ${qItem.maxLength}`, path);
    }
  }
}

function lcPrimitive(t: string): string {
  return /^(Boolean|Decimal|Integer|Date|DateTime|Time|String|Uri)$/.test(t) ? t[0].toLowerCase() + t.slice(1) : t;
}

function checkOption(st: State, qItem: any, open: boolean, suffix: string, value: any, path: string): void {
  const options = arr(qItem.answerOption);
  if (options.length) {
    if (suffix === 'String' && open) return; // free text
    const same = options.filter((o) => o[`value${suffix}`] !== undefined).map((o) => o[`value${suffix}`]);
    let found: boolean;
    let shown: string;
    if (suffix === 'Coding') {
      if (open && value && value.code === undefined && value.system === undefined) return; // text only
      found = same.some((c) => c && c.system === value?.system && c.code === value?.code);
      shown = `${value?.system ?? ''}#${value?.code ?? ''}`;
    } else if (suffix === 'Reference') {
      found = same.some((r) => r && r.reference !== undefined && r.reference === value?.reference);
      shown = String(value?.reference ?? '');
    } else {
      found = same.some((x) => x === value);
      shown = String(value);
    }
    if (!found) {
      push(
        st,
        'error',
        'code-invalid',
        same.length
          ? `The answer ${shown} is not a valid option for item '${qItem.linkId}'`
          : `Item '${qItem.linkId}' has no answerOption of type ${lcPrimitive(suffix)}, so the answer ${shown} is not a valid option`,
        path,
      );
    }
    return;
  }
  const vs = qItem.answerValueSet;
  if (suffix !== 'Coding' || typeof vs !== 'string' || typeof value?.code !== 'string') return;
  if (vs.startsWith('#')) {
    // a value set contained in the Questionnaire
    const contained = arr(st.q.contained).find((c) => c.resourceType === 'ValueSet' && c.id === vs.slice(1));
    if (contained && containedMembership(contained, value.system, value.code) === false) {
      push(st, 'error', 'code-invalid', `The answer ${value.system ?? ''}#${value.code} is not in the value set ${vs} (item '${qItem.linkId}')`, path);
    }
    return;
  }
  if (!st.options.valueSetContains) return;
  const inValueSet = st.options.valueSetContains(vs, value.system, value.code);
  if (inValueSet === false) {
    push(st, 'error', 'code-invalid', `The answer ${value.system ?? ''}#${value.code} is not in the value set ${vs} (item '${qItem.linkId}')`, path);
  } else if (inValueSet === true && typeof value.display === 'string' && st.options.valueSetDisplayProblem) {
    const problem = st.options.valueSetDisplayProblem(vs, value.system, value.code, value.display);
    if (problem) push(st, 'warning', 'code-invalid', `${problem} (item '${qItem.linkId}')`, `${path}.valueCoding.display`);
  }
}

/**
 * Membership in a value set contained in the Questionnaire, from its expansion or its
 * enumerated codes: undefined when it cannot be told here (filters, whole code systems,
 * imported value sets).
 */
function containedMembership(vs: any, system: string | undefined, code: string): boolean | undefined {
  const listed = (concepts: unknown) => arr(concepts).some((c) => c.code === code);
  if (Array.isArray(vs.expansion?.contains)) {
    const flat: any[] = [];
    const walk = (list: unknown) => arr(list).forEach((c) => (flat.push(c), walk(c.contains)));
    walk(vs.expansion.contains);
    return flat.some((c) => c.code === code && (system === undefined || c.system === system));
  }
  const includes = arr(vs.compose?.include);
  if (!includes.length) return undefined;
  let unknown = false;
  for (const inc of includes) {
    if (inc.valueSet !== undefined) {
      unknown = true;
      continue;
    }
    if (system !== undefined && inc.system !== system) continue;
    if (arr(inc.filter).length || !Array.isArray(inc.concept)) {
      unknown = true;
      continue;
    }
    if (listed(inc.concept)) {
      const excluded = arr(vs.compose?.exclude).some((ex) => (ex.system === undefined || ex.system === inc.system) && listed(ex.concept));
      if (!excluded) return true;
    }
  }
  return unknown ? undefined : false;
}

/** questionnaire-minOccurs / maxOccurs: how many answers a question has, or how many times a group occurs. */
function occurrenceLimits(st: State, qItem: any, count: number, what: 'answers' | 'occurrences', path: string): void {
  const min = extensionValues(qItem, 'minOccurs').find((x) => typeof x.value === 'number')?.value as number | undefined;
  const max = extensionValues(qItem, 'maxOccurs').find((x) => typeof x.value === 'number')?.value as number | undefined;
  if (min !== undefined && count < min) {
    // like a missing required answer: an error once the response is complete
    push(st, st.complete ? 'error' : 'warning', 'required', `Item '${qItem.linkId}' has ${count} ${what}, fewer than minOccurs ${min}`, path);
  }
  if (max !== undefined && count > max) push(st, 'error', 'business-rule', `Item '${qItem.linkId}' has ${count} ${what}, more than maxOccurs ${max}`, path);
}

/** An answer chosen from an optionExclusive answerOption must be the item's only answer. */
function exclusiveOptions(st: State, qItem: any, answers: any[], path: string): void {
  if (answers.length < 2) return;
  const exclusive = arr(qItem.answerOption).filter((o) => extensionValues(o, 'optionExclusive').some((x) => x.value === true));
  if (!exclusive.length) return;
  answers.forEach((answer, j) => {
    const suffix = choiceSuffix(answer, 'value');
    if (!suffix) return;
    const value = answer[`value${suffix}`];
    const hit = exclusive.some((o) => {
      const option = o[`value${suffix}`];
      if (option === undefined) return false;
      if (suffix === 'Coding') return option?.code === value?.code && option?.system === value?.system;
      if (suffix === 'Reference') return option?.reference === value?.reference;
      return option === value;
    });
    if (hit) push(st, 'error', 'business-rule', `The answer ${suffix === 'Coding' ? `${value?.system ?? ''}#${value?.code ?? ''}` : String(value?.reference ?? value)} of item '${qItem.linkId}' is an exclusive option: it cannot be given with other answers`, `${path}.answer[${j}]`);
  });
}

// ------------------------------------------------------------------ enableWhen

const and3 = (a: Tri, b: Tri): Tri => (a === false || b === false ? false : a === true && b === true ? true : undefined);
const or3 = (a: Tri, b: Tri): Tri => (a === true || b === true ? true : a === false && b === false ? false : undefined);

/** true / false when sure; undefined when it cannot be decided here. */
function isEnabled(st: State, qItem: any, frames: Frame[]): Tri {
  if (arr(qItem.extension).some((e) => e.url === ENABLE_WHEN_EXPRESSION)) return undefined;
  const conditions = arr(qItem.enableWhen);
  if (!conditions.length) return true;
  const results = conditions.map((ew) => evalCondition(st, ew, frames));
  if (results.length === 1) return results[0];
  if (qItem.enableBehavior === 'all') return results.reduce<Tri>((a, b) => and3(a, b), true);
  if (qItem.enableBehavior === 'any') return results.reduce<Tri>((a, b) => or3(a, b), false);
  return undefined;
}

/** The answers to a question as seen from an item placed under `frames` (nearest common ancestor instance first). */
function answersOf(st: State, target: any, frames: Frame[]): any[] | undefined {
  const chain = [...(st.index.ancestors.get(target) ?? []), target];
  let k = 0;
  while (k < frames.length && k < chain.length && frames[k].q === chain[k]) k++;
  let nodes: any[];
  if (k === chain.length) {
    nodes = [frames[k - 1].node]; // the question is an ancestor
  } else {
    nodes = [k === 0 ? st.qr : frames[k - 1].node];
    for (const q of chain.slice(k)) {
      nodes = nodes.flatMap((n) => childItems(n)).filter((n) => n.linkId === q.linkId);
    }
  }
  return nodes.flatMap((n) => arr(n.answer)).filter(hasValue);
}

function childItems(node: any): any[] {
  if (node.resourceType === 'QuestionnaireResponse') return arr(node.item);
  return [...arr(node.item), ...arr(node.answer).flatMap((a) => arr(a.item))];
}

function evalCondition(st: State, ew: any, frames: Frame[]): Tri {
  if (typeof ew.question !== 'string') return undefined;
  const target = st.index.byLinkId.get(ew.question);
  if (!target) return undefined;
  const answers = answersOf(st, target, frames);
  if (!answers) return undefined;
  const op = ew.operator;
  if (op === 'exists') {
    return typeof ew.answerBoolean === 'boolean' ? answers.length > 0 === ew.answerBoolean : undefined;
  }
  const expected = normalize(ew, 'answer');
  if (!expected) return undefined;
  const eq = (a: any): Tri => {
    const c = compare(normalize(a, 'value'), expected);
    return c === undefined ? undefined : c === 0;
  };
  if (op === '=') return answers.reduce<Tri>((acc, a) => or3(acc, eq(a)), false);
  if (op === '!=') {
    if (!answers.length) return undefined; // "any answer differs" and "no answer equals" disagree here
    const r = answers.map(eq);
    if (r.every((x) => x === false)) return true;
    if (r.every((x) => x === true)) return false;
    return undefined;
  }
  const test: Record<string, (c: number) => boolean> = { '>': (c) => c > 0, '<': (c) => c < 0, '>=': (c) => c >= 0, '<=': (c) => c <= 0 };
  const t = test[op];
  if (!t) return undefined;
  return answers.reduce<Tri>((acc, a) => {
    const c = compare(normalize(a, 'value'), expected);
    return or3(acc, typeof c === 'number' ? t(c) : undefined);
  }, false);
}

type Kind = 'number' | 'boolean' | 'string' | 'date' | 'time' | 'coding' | 'quantity' | 'reference' | 'other';
interface Norm {
  kind: Kind;
  v: any;
}

function normalize(o: any, prefix: 'value' | 'answer'): Norm | undefined {
  const suffix = choiceSuffix(o, prefix);
  if (!suffix) return undefined;
  const v = o[prefix + suffix];
  const kind: Kind =
    suffix === 'Decimal' || suffix === 'Integer'
      ? 'number'
      : suffix === 'Boolean'
        ? 'boolean'
        : suffix === 'String' || suffix === 'Uri'
          ? 'string'
          : suffix === 'Date' || suffix === 'DateTime'
            ? 'date'
            : suffix === 'Time'
              ? 'time'
              : suffix === 'Coding'
                ? 'coding'
                : suffix === 'Quantity'
                  ? 'quantity'
                  : suffix === 'Reference'
                    ? 'reference'
                    : 'other';
  return { kind, v };
}

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** -1 / 0 / 1 when ordered, 'ne' when only known to differ, undefined when it cannot be said. */
function compare(a: Norm | undefined, b: Norm): number | 'ne' | undefined {
  if (!a || a.kind !== b.kind) return undefined;
  const x = a.v;
  const y = b.v;
  switch (a.kind) {
    case 'number':
      return typeof x === 'number' && typeof y === 'number' ? sign(x - y) : undefined;
    case 'boolean':
    case 'string':
      if (typeof x !== typeof y || (typeof x !== 'string' && typeof x !== 'boolean')) return undefined;
      return x === y ? 0 : 'ne';
    case 'date':
      return compareDates(x, y);
    case 'time':
      return typeof x === 'string' && typeof y === 'string' && /^\d{2}:\d{2}:\d{2}$/.test(x) && /^\d{2}:\d{2}:\d{2}$/.test(y)
        ? sign(x.localeCompare(y))
        : undefined;
    case 'coding': {
      if (!x || !y || typeof x.code !== 'string' || typeof y.code !== 'string') return undefined;
      if (x.code !== y.code) return 'ne';
      if (x.system === y.system) return 0;
      if (x.system && y.system) return 'ne';
      return undefined; // same code, system on one side only
    }
    case 'quantity': {
      if (!x || !y || typeof x.value !== 'number' || typeof y.value !== 'number') return undefined;
      const sameUnit =
        (typeof x.code === 'string' && x.code === y.code && x.system === y.system) ||
        (x.code === undefined && y.code === undefined && typeof x.unit === 'string' && x.unit === y.unit);
      return sameUnit ? sign(x.value - y.value) : undefined;
    }
    case 'reference':
      if (typeof x?.reference !== 'string' || typeof y?.reference !== 'string') return undefined;
      return x.reference === y.reference ? 0 : 'ne';
    default:
      return undefined;
  }
}

const DATE = /^\d{4}(-\d{2}(-\d{2})?)?$/;
const FULL_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function compareDates(x: unknown, y: unknown): number | undefined {
  if (typeof x !== 'string' || typeof y !== 'string') return undefined;
  if (DATE.test(x) && DATE.test(y)) return x.length === y.length ? sign(x.localeCompare(y)) : undefined;
  if (FULL_DATE_TIME.test(x) && FULL_DATE_TIME.test(y)) {
    const a = Date.parse(x);
    const b = Date.parse(y);
    return Number.isNaN(a) || Number.isNaN(b) ? undefined : sign(a - b);
  }
  return undefined;
}

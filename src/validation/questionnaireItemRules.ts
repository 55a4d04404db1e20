/**
 * The constraints a Questionnaire item states in extensions, checked on each answer of a
 * QuestionnaireResponse (R4 core and SDC extensions, as the HL7 Java validator reads them):
 * minValue / maxValue (integer, decimal, date, dateTime, time, Quantity; SDC minQuantity /
 * maxQuantity), maxDecimalPlaces, minLength, regex, mimeType, maxSize, and for quantity items
 * unitOption / unitValueSet. minOccurs / maxOccurs count answers (questions) or occurrences
 * (groups) and are checked by the caller with `occurrenceLimits`.
 *
 * A false error is worse than a missed one: a comparison that cannot be made for sure
 * (different date precisions, units that are neither equal nor UCUM-convertible, a regex RE2
 * cannot run) gives no error.
 */
import type { Issue, IssueCode } from '../errors';
import { Comparison, compareWithLimit, OrderedKind } from './ordering';
import { matchesWhole, patternProblem } from './userRegex';

const EXT = 'http://hl7.org/fhir/StructureDefinition/';
const SDC = 'http://hl7.org/fhir/uv/sdc/StructureDefinition/';
export const ITEM_EXTENSIONS = {
  minValue: [`${EXT}minValue`],
  maxValue: [`${EXT}maxValue`],
  minQuantity: [`${SDC}sdc-questionnaire-minQuantity`],
  maxQuantity: [`${SDC}sdc-questionnaire-maxQuantity`],
  maxDecimalPlaces: [`${EXT}maxDecimalPlaces`],
  minLength: [`${EXT}minLength`],
  regex: [`${EXT}regex`],
  mimeType: [`${EXT}mimeType`],
  maxSize: [`${EXT}maxSize`],
  unitOption: [`${EXT}questionnaire-unitOption`],
  unitValueSet: [`${EXT}questionnaire-unitValueSet`],
  minOccurs: [`${EXT}questionnaire-minOccurs`],
  maxOccurs: [`${EXT}questionnaire-maxOccurs`],
  optionExclusive: [`${EXT}questionnaire-optionExclusive`],
} as const;

export interface RuleIssue {
  severity: Issue['severity'];
  code: IssueCode;
  diagnostics: string;
}

export interface RuleContext {
  /** is system|code in the value set? undefined when it cannot be told here */
  valueSetContains?: (valueSet: string, system: string | undefined, code: string) => boolean | undefined;
}

const arr = (x: unknown): any[] => (Array.isArray(x) ? x.filter((y) => y && typeof y === 'object') : []);

/** The values of an item's extensions of one kind, value[x] whatever its type. */
export function extensionValues(item: any, kind: keyof typeof ITEM_EXTENSIONS): { type: string; value: any }[] {
  const urls: readonly string[] = ITEM_EXTENSIONS[kind];
  const out: { type: string; value: any }[] = [];
  for (const e of arr(item?.extension)) {
    if (!urls.includes(e.url)) continue;
    const key = Object.keys(e).find((k) => k.startsWith('value') && k.length > 5);
    if (key) out.push({ type: key.slice(5), value: e[key] });
  }
  return out;
}

const firstNumber = (item: any, kind: keyof typeof ITEM_EXTENSIONS): number | undefined => {
  const v = extensionValues(item, kind).find((x) => typeof x.value === 'number');
  return v?.value;
};

/** Every issue of one answer (`suffix`: its value[x] type) against the item's constraint extensions. */
export function answerRuleIssues(qItem: any, suffix: string, value: any, ctx: RuleContext): RuleIssue[] {
  const out: RuleIssue[] = [];
  const label = `item '${qItem.linkId}'`;
  // minValue / maxValue (and the SDC quantity forms)
  for (const [kind, isMin] of [['minValue', true], ['maxValue', false], ['minQuantity', true], ['maxQuantity', false]] as const) {
    for (const limit of extensionValues(qItem, kind)) {
      const c = compareAnswer(suffix, value, limit.type, limit.value);
      if (c === undefined) continue;
      if (c.incompatible !== undefined) {
        out.push({ severity: 'error', code: 'business-rule', diagnostics: `The answer ${show(suffix, value)} cannot be compared with the ${isMin ? 'minimum' : 'maximum'} ${show(limit.type, limit.value)} of ${label}: ${c.incompatible}` });
      } else if (isMin ? c.order! < 0 : c.order! > 0) {
        out.push({
          severity: 'error',
          code: 'business-rule',
          diagnostics: isMin
            ? `The answer ${show(suffix, value)} is less than the minimum ${show(limit.type, limit.value)} allowed for ${label}`
            : `The answer ${show(suffix, value)} is more than the maximum ${show(limit.type, limit.value)} allowed for ${label}`,
        });
      }
    }
  }
  const decimals = firstNumber(qItem, 'maxDecimalPlaces');
  const number = suffix === 'Decimal' ? value : suffix === 'Quantity' ? value?.value : undefined;
  if (decimals !== undefined && typeof number === 'number') {
    const places = decimalPlaces(number);
    if (places > decimals) out.push({ severity: 'error', code: 'business-rule', diagnostics: `The answer ${number} has ${places} decimal places, more than the ${decimals} allowed for ${label}` });
  }
  const text = primitiveText(suffix, value);
  const minLength = firstNumber(qItem, 'minLength');
  if (minLength !== undefined && typeof text === 'string' && [...text].length < minLength) {
    out.push({ severity: 'error', code: 'business-rule', diagnostics: `The answer for ${label} is ${[...text].length} characters long, less than minLength ${minLength}` });
  }
  for (const { value: pattern } of extensionValues(qItem, 'regex')) {
    if (typeof pattern !== 'string' || typeof text !== 'string') continue;
    // patterns run on RE2 only (docs/decisions/005-request-limits.md): one it cannot run is not checked
    const problem = patternProblem(pattern);
    if (problem) {
      out.push({ severity: 'warning', code: 'not-supported', diagnostics: `The answer for ${label} was not checked against its regex: ${problem}` });
    } else if (!matchesWhole(pattern, text)) {
      out.push({ severity: 'error', code: 'business-rule', diagnostics: `The answer '${text}' does not match the regex ${pattern} of ${label}` });
    }
  }
  if (suffix === 'Attachment' && value) out.push(...attachmentIssues(qItem, value, label));
  if (suffix === 'Quantity' && value) out.push(...unitIssues(qItem, value, label, ctx));
  return out;
}

function show(suffix: string, v: any): string {
  if (suffix === 'Quantity' && v && typeof v === 'object') return `${v.value ?? '?'} ${v.code ?? v.unit ?? ''}`.trim();
  return typeof v === 'string' ? `'${v}'` : String(v);
}

/** The text a regex or minLength is matched against: the answer as written, for primitive answers. */
function primitiveText(suffix: string, value: any): string | undefined {
  if (typeof value === 'string') return value;
  if ((suffix === 'Integer' || suffix === 'Decimal') && typeof value === 'number') return String(value);
  return undefined;
}

/** Decimal places of a number as JavaScript writes it (trailing zeros sent are not seen: fewer places, never a false error). */
function decimalPlaces(n: number): number {
  const s = String(n);
  const exp = /e([+-]\d+)$/i.exec(s);
  const mantissa = exp ? s.slice(0, exp.index) : s;
  const dot = mantissa.indexOf('.');
  const places = dot < 0 ? 0 : mantissa.length - dot - 1;
  return Math.max(0, places - (exp ? Number(exp[1]) : 0));
}


// a quantity against a limit without a unit: not comparable for sure (3500 g is not more than 300 kg)
const ANSWER_KINDS = new Map<string, OrderedKind>([['Integer', 'number'], ['Decimal', 'number'], ['Quantity', 'quantity'], ['Date', 'date'], ['DateTime', 'date'], ['Time', 'time']]);

/** The answer against a limit: its order, the reason they cannot be compared, or undefined when it cannot be told. */
function compareAnswer(suffix: string, value: any, limitType: string, limit: any): Comparison | undefined {
  return compareWithLimit(ANSWER_KINDS.get(suffix), value, ANSWER_KINDS.get(limitType), limit);
}

function attachmentIssues(qItem: any, att: any, label: string): RuleIssue[] {
  const out: RuleIssue[] = [];
  const types = extensionValues(qItem, 'mimeType').map((x) => x.value).filter((v): v is string => typeof v === 'string');
  if (types.length && typeof att.contentType === 'string') {
    const base = att.contentType.split(';')[0].trim().toLowerCase();
    const ok = types.some((t) => {
      const want = t.split(';')[0].trim().toLowerCase();
      return want === base || (want.endsWith('/*') && base.startsWith(want.slice(0, -1)));
    });
    if (!ok) out.push({ severity: 'error', code: 'business-rule', diagnostics: `The attachment's content type ${att.contentType} is not among those allowed for ${label} (${types.join(', ')})` });
  }
  const maxSize = firstNumber(qItem, 'maxSize');
  if (maxSize !== undefined) {
    const size = attachmentSize(att);
    if (size !== undefined && size > maxSize) out.push({ severity: 'error', code: 'business-rule', diagnostics: `The attachment is ${size} bytes, more than the ${maxSize} allowed for ${label}` });
  }
  return out;
}

/** The size of an attachment: its data decoded when sent, else its stated size. */
function attachmentSize(att: any): number | undefined {
  if (typeof att.data === 'string') {
    const compact = att.data.replace(/\s+/g, '');
    if (/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return Math.floor((compact.length * 3) / 4) - (compact.endsWith('==') ? 2 : compact.endsWith('=') ? 1 : 0);
  }
  const size = typeof att.size === 'number' ? att.size : typeof att.size === 'string' && /^\d+$/.test(att.size) ? Number(att.size) : undefined;
  return size;
}

function unitIssues(qItem: any, q: any, label: string, ctx: RuleContext): RuleIssue[] {
  const out: RuleIssue[] = [];
  const options = extensionValues(qItem, 'unitOption').filter((x) => x.type === 'Coding' && x.value).map((x) => x.value);
  const unit = `${q.system ? `${q.system}#` : ''}${q.code ?? q.unit ?? ''}`;
  if (options.length) {
    const ok = options.some((o: any) =>
      typeof o.code === 'string' ? o.code === q.code && (o.system ?? undefined) === (q.system ?? undefined) : typeof o.display === 'string' && o.display === q.unit,
    );
    if (!ok) out.push({ severity: 'error', code: 'code-invalid', diagnostics: `The unit ${unit} is not one of the unit options of ${label}` });
  }
  for (const { value: vs } of extensionValues(qItem, 'unitValueSet')) {
    if (typeof vs !== 'string' || !ctx.valueSetContains) continue;
    if (typeof q.code !== 'string') {
      out.push({ severity: 'error', code: 'code-invalid', diagnostics: `The quantity of ${label} has no unit code, but its unit must come from the value set ${vs}` });
      continue;
    }
    if (ctx.valueSetContains(vs, q.system, q.code) === false) out.push({ severity: 'error', code: 'code-invalid', diagnostics: `The unit ${unit} is not in the value set ${vs} (${label})` });
  }
  return out;
}

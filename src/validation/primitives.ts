/**
 * R4 primitive datatypes: JSON representation and lexical rules (the regexes
 * of the R4 specification), with the HL7 validator's wording where possible.
 */

export const PRIMITIVES = new Set([
  'boolean', 'integer', 'string', 'decimal', 'uri', 'url', 'canonical', 'base64Binary', 'instant', 'date',
  'dateTime', 'time', 'code', 'oid', 'id', 'markdown', 'unsignedInt', 'positiveInt', 'uuid', 'xhtml',
]);

const NUMBER_TYPES = new Set(['integer', 'decimal', 'unsignedInt', 'positiveInt']);

const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const RE = {
  date: new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`),
  dateTime: new RegExp(
    `^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`,
  ),
  instant: new RegExp(
    `^${YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`,
  ),
  time: /^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?$/,
  id: /^[A-Za-z0-9\-.]{1,64}$/,
  code: /^[^\s]+( [^\s]+)*$/,
  oid: /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/,
  uuid: /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
};

const NOT_BASE64 = /[^A-Za-z0-9+/=]/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

/**
 * Whether text without whitespace matches /^[A-Za-z0-9+/]*={0,2}$/: one scan for a
 * character outside the alphabet, then where the padding starts. The anchored pattern
 * itself costs several milliseconds on a document's base64 (270 KB for 200 KB of PDF).
 */
export function isBase64(text: string): boolean {
  if (NOT_BASE64.test(text)) return false;
  const pad = text.indexOf('=');
  return pad < 0 || (pad >= text.length - 2 && text.charCodeAt(text.length - 1) === 61);
}

/** Base64 text without its whitespace (copied only when it has some). */
export function compactBase64(text: string): string {
  return NOT_BASE64.test(text) ? text.replace(/\s+/g, '') : text;
}

/**
 * The bytes of base64Binary text (whitespace ignored), with whether it is padded to whole
 * quanta as the R4 regex requires; undefined when it is not base64.
 *
 * Most base64 comes compact and padded: it is decoded first and checked by the decoded
 * length, about a tenth of the cost of a regex scan of a document (0.1 against 0.25 ms for
 * 270 KB). Node's decoder skips characters outside the alphabet and accepts the URL-safe
 * `-` and `_`: with a length a multiple of 4, each skipped character shortens the result
 * (each carries 6 of the bits that make up whole bytes), so a result of the length the text
 * implies means every character was in the alphabet, once `-`, `_` and an inner `=` are
 * excluded. Anything else (whitespace, odd lengths) takes the scans.
 */
export function decodeBase64(text: string): { bytes: Buffer; padded: boolean } | undefined {
  const length = text.length;
  if (length % 4 === 0) {
    const pad = text.charCodeAt(length - 1) === 61 ? (text.charCodeAt(length - 2) === 61 ? 2 : 1) : 0;
    const bytes = Buffer.from(text, 'base64');
    const inner = text.indexOf('=');
    if (bytes.length === ((length - pad) * 3) >> 2 && (inner < 0 || inner >= length - pad) && text.indexOf('-') < 0 && text.indexOf('_') < 0) {
      return { bytes, padded: true };
    }
  }
  const compact = compactBase64(text);
  // whitespace alone is no quantum: the R4 regex, (\s*([0-9a-zA-Z\+/=]){4}\s*)+, asks for one at least
  return isBase64(compact) ? { bytes: Buffer.from(compact, 'base64'), padded: compact.length > 0 && compact.length % 4 === 0 } : undefined;
}

export interface PrimitiveProblem {
  severity: 'error' | 'warning';
  code: 'structure' | 'value' | 'invalid';
  message: string;
}

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function validCalendarDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (!m) return true;
  const y = +m[1];
  const mo = +m[2];
  const d = +m[3];
  const days = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return d <= days[mo - 1];
}

/** Check a primitive JSON value against its FHIR type. Returns problems (empty = fine). */
export function checkPrimitive(type: string, value: unknown, isResourceId = false): PrimitiveProblem[] {
  const out: PrimitiveProblem[] = [];
  const kind = jsonKind(value);
  if (type === 'boolean') {
    if (kind !== 'boolean') out.push({ severity: 'error', code: 'structure', message: `Error parsing JSON: the primitive value must be a boolean` });
    return out;
  }
  if (NUMBER_TYPES.has(type)) {
    if (kind !== 'number') {
      out.push({ severity: 'error', code: 'structure', message: `Error parsing JSON: the primitive value must be a number` });
      return out;
    }
    const n = value as number;
    if (type === 'decimal') {
      if (!Number.isFinite(n)) out.push({ severity: 'error', code: 'value', message: `The value '${n}' is not a valid decimal` });
      return out;
    }
    if (!Number.isInteger(n)) {
      out.push({ severity: 'error', code: 'value', message: `The value '${n}' is not a valid integer` });
      return out;
    }
    if (n > 2147483647) out.push({ severity: 'error', code: 'value', message: `value is greater than permitted maximum value of 2147483647` });
    if (n < -2147483648) out.push({ severity: 'error', code: 'value', message: `value is less than permitted minimum value of -2147483648` });
    if (type === 'unsignedInt' && n < 0) out.push({ severity: 'error', code: 'value', message: `value is less than permitted minimum value of 0` });
    if (type === 'positiveInt' && n < 1) out.push({ severity: 'error', code: 'value', message: `value is less than permitted minimum value of 1` });
    return out;
  }
  // string-based
  if (kind !== 'string') {
    out.push({ severity: 'error', code: 'structure', message: `Error parsing JSON: the primitive value must be a string` });
    return out;
  }
  const s = value as string;
  if (s.length === 0) {
    out.push({ severity: 'error', code: 'value', message: `@value cannot be empty` });
    return out;
  }
  if (isResourceId) type = 'id';
  // every string-based type, R4 datatypes.html#string: no character below U+0020 but tab, CR and LF
  // (an XML answer could not hold one: a single writer would break every XML read of the record)
  const control = CONTROL_CHARACTER.exec(s);
  if (control) {
    const point = `U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    out.push({ severity: 'error', code: 'value', message: `The value contains the character ${point}: below U+0020, FHIR strings hold only tab, carriage return and line feed` });
  }
  switch (type) {
    case 'string':
    case 'markdown':
      if (s.trim().length === 0) out.push({ severity: 'warning', code: 'value', message: `Primitive types should not only be whitespace` });
      if (s.length > 1048576) out.push({ severity: 'error', code: 'value', message: `value is longer than permitted maximum length of 1 MB (1048576 bytes)` });
      break;
    case 'code':
      if (!RE.code.test(s)) out.push({ severity: 'error', code: 'value', message: `The code '${s}' is not valid (whitespace rules)` });
      break;
    case 'id':
      if (!RE.id.test(s)) out.push({ severity: 'error', code: 'value', message: isResourceId ? `Invalid Resource id` : `id value '${s}' is not valid` });
      break;
    case 'uri':
    case 'url':
    case 'canonical':
      if (/\s/.test(s)) out.push({ severity: 'error', code: 'value', message: `URI values cannot have whitespace('${s}')` });
      else if (s.startsWith('oid:')) out.push({ severity: 'error', code: 'value', message: `URI values cannot start with oid:` });
      else if (s.startsWith('uuid:')) out.push({ severity: 'error', code: 'value', message: `URI values cannot start with uuid:` });
      // a urn:uuid URI has the syntax of its scheme (case aside: RFC 4122 reads hex digits either way)
      else if (s.startsWith('urn:uuid:') && !RE.uuid.test(s.toLowerCase())) out.push({ severity: 'error', code: 'value', message: `UUIDs must be valid (${s})` });
      break;
    case 'oid':
      if (!s.startsWith('urn:oid:')) out.push({ severity: 'error', code: 'value', message: `OIDs must start with urn:oid:` });
      else if (!RE.oid.test(s)) out.push({ severity: 'error', code: 'value', message: `OIDs must be valid (${s})` });
      break;
    case 'uuid':
      if (!s.startsWith('urn:uuid:')) out.push({ severity: 'error', code: 'value', message: `UUIDs must start with urn:uuid:` });
      else if (!RE.uuid.test(s)) out.push({ severity: 'error', code: 'value', message: `UUIDs must be valid and lowercase (${s})` });
      break;
    case 'date':
      if (!RE.date.test(s) || !validCalendarDate(s)) out.push({ severity: 'error', code: 'value', message: `Not a valid date (${s})` });
      break;
    case 'dateTime':
      if (!RE.dateTime.test(s) || !validCalendarDate(s)) {
        if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s) && RE.dateTime.test(s + 'Z')) {
          out.push({ severity: 'error', code: 'value', message: `if a date has a time, it must have a timezone` });
        } else {
          out.push({ severity: 'error', code: 'value', message: `Not a valid date/time (${s})` });
        }
      }
      break;
    case 'instant':
      if (!RE.instant.test(s) || !validCalendarDate(s)) out.push({ severity: 'error', code: 'value', message: `Not a valid instant (${s})` });
      break;
    case 'time':
      if (!RE.time.test(s)) out.push({ severity: 'error', code: 'value', message: `Not a valid time (${s})` });
      break;
    case 'base64Binary': {
      if (!decodeBase64(s)?.padded) {
        out.push({ severity: 'error', code: 'value', message: `The value '${s.length > 50 ? s.slice(0, 50) + '...' : s}' is not a valid Base64 value` });
      }
      break;
    }
    case 'xhtml':
      break;
  }
  return out;
}

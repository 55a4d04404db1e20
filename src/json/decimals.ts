/**
 * The precision of a FHIR decimal is part of its value (datatypes.html#decimal): 72.10 is
 * not 72.1. JSON.parse turns both into the same JavaScript number, so the numbers whose
 * text a number cannot give back (trailing zeros, exponents) are kept aside by JSON
 * Pointer path, and put back when the resource is serialised for storage.
 */

/** JSON Pointer path → the number's text as received, for the numbers that would change. */
export type DecimalTexts = Map<string, string>;

/**
 * A number token (after : , or [, before , ] or }) that String(Number(text)) would not give
 * back — trailing zeros of a fraction, an exponent, a negative zero: only then is the text
 * scanned. Text inside strings rarely has that shape; when it does, the scan finds nothing.
 */
const MAYBE = /[:,[]\s*(?:-?\d+(?:\.\d*0|(?:\.\d+)?[eE][+-]?\d+)|-0|-?\d*\.?\d{16,})(?=\s*[,\]}])/;

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** The numbers of a JSON text that lose their form as JavaScript numbers; undefined when none does. */
export function decimalTexts(text: string): DecimalTexts | undefined {
  if (!MAYBE.test(text)) return undefined;
  const found: DecimalTexts = new Map();
  // a minimal scanner over valid JSON (JSON.parse has already accepted the text)
  const path: (string | number)[] = [];
  const containers: ('o' | 'a')[] = [];
  let pendingKey: string | undefined;
  let i = 0;
  const readString = (): string => {
    const start = i + 1;
    let escaped = false;
    i++;
    for (let c = text.charCodeAt(i); c !== 34; c = text.charCodeAt(i)) {
      if (c === 92) {
        escaped = true;
        i += 2;
      } else i++;
    }
    i++;
    return escaped ? (JSON.parse(text.slice(start - 1, i)) as string) : text.slice(start, i - 1);
  };
  const enterValue = () => {
    // the path of the value about to be read
    const top = containers[containers.length - 1];
    if (top === 'o') path.push(pendingKey!);
    else if (top === 'a') path.push(path.pop() as number); // index already set
  };
  const leaveValue = () => {
    const top = containers[containers.length - 1];
    if (top === 'o') path.pop();
    else if (top === 'a') path[path.length - 1] = (path[path.length - 1] as number) + 1;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t' || c === ',' || c === ':') {
      i++;
    } else if (c === '{' || c === '[') {
      enterValue();
      containers.push(c === '{' ? 'o' : 'a');
      if (c === '[') path.push(0);
      i++;
    } else if (c === '}' || c === ']') {
      if (c === ']') path.pop();
      containers.pop();
      i++;
      leaveValue();
    } else if (c === '"') {
      const s = readString();
      let j = i;
      while (text[j] === ' ' || text[j] === '\n' || text[j] === '\r' || text[j] === '\t') j++;
      if (containers[containers.length - 1] === 'o' && text[j] === ':') pendingKey = s;
      else {
        enterValue();
        leaveValue();
      }
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const start = i;
      for (let d = text.charCodeAt(i); (d >= 48 && d <= 57) || d === 45 || d === 43 || d === 46 || d === 101 || d === 69; d = text.charCodeAt(++i));
      const literal = text.slice(start, i);
      enterValue();
      if (String(Number(literal)) !== literal) found.set('/' + path.map((p) => escapePointer(String(p))).join('/'), literal);
      leaveValue();
    } else {
      // true, false, null
      for (let d = text.charCodeAt(i); d >= 97 && d <= 122; d = text.charCodeAt(++i));
      enterValue();
      leaveValue();
    }
  }
  return found.size ? found : undefined;
}

/** The texts under `prefix` (a Bundle entry's resource), with paths relative to it. */
export function decimalTextsUnder(texts: DecimalTexts | undefined, prefix: string): DecimalTexts | undefined {
  if (!texts) return undefined;
  const out: DecimalTexts = new Map();
  for (const [p, t] of texts) if (p.startsWith(prefix + '/')) out.set(p.slice(prefix.length), t);
  return out.size ? out : undefined;
}

/**
 * JSON text of `value`, each number at a path of `texts` written as received — when it
 * still holds the same number (an edit since then keeps the edited value).
 */
export function stringifyWithDecimals(value: unknown, texts: DecimalTexts | undefined): string {
  if (!texts) return JSON.stringify(value);
  const write = (v: unknown, pointer: string): string => {
    if (typeof v === 'number') {
      const text = texts.get(pointer);
      return text !== undefined && Number(text) === v ? text : JSON.stringify(v);
    }
    if (Array.isArray(v)) return `[${v.map((x, i) => (x === undefined || typeof x === 'function' ? 'null' : write(x, `${pointer}/${i}`))).join(',')}]`;
    if (v && typeof v === 'object') {
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(v);
      const parts: string[] = [];
      for (const [k, x] of Object.entries(v)) {
        if (x === undefined || typeof x === 'function') continue;
        parts.push(`${JSON.stringify(k)}:${write(x, `${pointer}/${escapePointer(k)}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    return JSON.stringify(v);
  };
  return write(value, '');
}

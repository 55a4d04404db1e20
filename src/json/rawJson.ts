import crypto from 'node:crypto';

/**
 * JSON text that is already serialised (a stored resource, a body just written) and goes
 * into a larger document as it is. A search page or a transaction response would otherwise
 * parse every resource only to serialise it again.
 *
 * Serialised by `stringifyJson`, the text is spliced in unchanged. Serialised by anything
 * else (plain JSON.stringify, pretty printing), it behaves as the value it stands for.
 */
export class RawJson {
  constructor(readonly text: string) {}

  toJSON(): unknown {
    if (splice === undefined) return JSON.parse(this.text);
    splice.texts.push(this.text);
    return `${splice.marker}${splice.texts.length - 1}`;
  }
}

interface Splice {
  marker: string;
  texts: string[];
}

let splice: Splice | undefined;

/**
 * A control character that JSON.stringify escapes as \u0001 and a random nonce: no string
 * of a resource can produce the same quoted placeholder by chance.
 */
const NONCE = crypto.randomBytes(12).toString('hex');
const MARKER = `\u0001${NONCE}:`;
const PLACEHOLDER = new RegExp(`"\\\\u0001${NONCE}:(\\d+)"`, 'g');

/** JSON text of `value`; RawJson values inside are spliced in as they are (parsed first when pretty). */
export function stringifyJson(value: unknown, pretty = false): string {
  if (pretty) return JSON.stringify(value, null, 2);
  const outer = splice;
  const current: Splice = { marker: MARKER, texts: [] };
  splice = current;
  let text: string;
  try {
    text = JSON.stringify(value);
  } finally {
    splice = outer;
  }
  if (current.texts.length === 0) return text;
  return text.replace(PLACEHOLDER, (_m, i: string) => current.texts[Number(i)]);
}

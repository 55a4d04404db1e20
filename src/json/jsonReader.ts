import { BadRequest, PayloadTooLarge } from '../errors';
import type { DecimalTexts } from './decimals';

/**
 * Reads a request body's JSON text into a value, refusing what JSON.parse would accept
 * but the rest of the server cannot take safely:
 *
 * - nesting past `maxDepth`: serialising, validating and walking references recurse, and
 *   a few thousand levels overflow the stack (500 instead of 4xx);
 * - more than `maxNodes` values in all, or more than `maxArrayLength` elements in one
 *   array: a few megabytes of `{},` are millions of objects, and the validator's issues
 *   about each of them exhaust memory;
 * - a member name given twice in one object: JSON.parse keeps the last, another reader
 *   (a signature check, an intermediary) may keep the first (RFC 8259 §4);
 * - the member names `__proto__`, `constructor` and `prototype`: no FHIR element has
 *   them, and code that copies or merges objects by assignment turns them into
 *   prototype pollution;
 * - strings holding NUL or half a surrogate pair, which PostgreSQL text cannot store and
 *   a FHIR string should not hold.
 *
 * The reader is a loop over an explicit stack: no input can make it recurse. It also
 * notes the numbers whose text a JavaScript number would not give back (72.10, 1e2, -0),
 * by JSON Pointer, as src/json/decimals.ts does.
 */
export interface JsonLimits {
  /** Arrays and objects nested in one another; the outermost object is level 1. */
  maxDepth: number;
  /** Values of every kind, containers included. */
  maxNodes: number;
  /** Elements of any one array. */
  maxArrayLength: number;
}

export interface JsonRead {
  value: unknown;
  decimals: DecimalTexts | undefined;
}

/** Member names that reach an object's prototype or constructor when assigned. */
const FORBIDDEN_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

/** NUL and unpaired halves of surrogate pairs. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Characters a JSON string may not hold unescaped (RFC 8259 §7). */
const CONTROL = /[\u0000-\u001f]/;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

interface Frame {
  container: Record<string, unknown> | unknown[];
  /** The member being read, for an object. */
  key: string;
}

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

class Reader {
  private i = 0;
  private nodes = 0;
  private readonly stack: Frame[] = [];
  private decimals: DecimalTexts | undefined;

  constructor(
    private readonly text: string,
    private readonly limits: JsonLimits,
  ) {}

  read(): JsonRead {
    let value: unknown;
    // each turn reads one value, then closes the containers it completes
    for (;;) {
      this.skipSpace();
      value = this.readValueOrOpen();
      if (value === OPENED) continue;
      for (;;) {
        const top = this.stack[this.stack.length - 1];
        if (!top) {
          this.skipSpace();
          if (this.i < this.text.length) this.fail('unexpected text after the JSON value');
          return { value, decimals: this.decimals };
        }
        if (Array.isArray(top.container)) top.container.push(value);
        else top.container[top.key] = value;
        this.skipSpace();
        const c = this.text.charCodeAt(this.i++);
        if (c === 44 /* , */) {
          if (Array.isArray(top.container)) this.nextElement(top.container);
          else top.key = this.readMemberName(top.container, this.stack.length - 1);
          break;
        }
        if (c === (Array.isArray(top.container) ? 93 /* ] */ : 125) /* } */) {
          value = top.container;
          this.stack.pop();
          continue;
        }
        this.i--;
        this.fail(Array.isArray(top.container) ? "expected ',' or ']'" : "expected ',' or '}'");
      }
    }
  }

  /** A scalar value, or OPENED after pushing a non-empty container whose first member or element comes next. */
  private readValueOrOpen(): unknown {
    const text = this.text;
    const c = text.charCodeAt(this.i);
    this.count();
    if (c === 123 /* { */ || c === 91 /* [ */) {
      if (this.stack.length >= this.limits.maxDepth) {
        throw new PayloadTooLarge(`The body nests arrays and objects more than ${this.limits.maxDepth} levels deep, the limit of this server`);
      }
      this.i++;
      this.skipSpace();
      if (c === 123) {
        const object: Record<string, unknown> = {};
        if (text.charCodeAt(this.i) === 125) {
          this.i++;
          return object;
        }
        this.stack.push({ container: object, key: this.readMemberName(object, this.stack.length) });
        return OPENED;
      }
      const array: unknown[] = [];
      if (text.charCodeAt(this.i) === 93) {
        this.i++;
        return array;
      }
      this.nextElement(array);
      this.stack.push({ container: array, key: '' });
      return OPENED;
    }
    if (c === 34 /* " */) return this.readString();
    if (c === 45 /* - */ || (c >= 48 && c <= 57)) return this.readNumber();
    if (text.startsWith('true', this.i)) return (this.i += 4), true;
    if (text.startsWith('false', this.i)) return (this.i += 5), false;
    if (text.startsWith('null', this.i)) return (this.i += 4), null;
    return this.fail(this.i >= text.length ? 'unexpected end of the text' : 'expected a value');
  }

  private count(): void {
    if (++this.nodes > this.limits.maxNodes) {
      throw new PayloadTooLarge(`The body holds more than ${this.limits.maxNodes} JSON values (objects, arrays, strings, numbers...), the limit of this server`);
    }
  }

  private nextElement(array: unknown[]): void {
    if (array.length >= this.limits.maxArrayLength) {
      throw new PayloadTooLarge(`An array of the body has more than ${this.limits.maxArrayLength} elements, the limit of this server`);
    }
  }

  /**
   * `"name" :` of the next member of `object` (whose own frame, pushed or about to be, is
   * stack[level]), refused when the object already has it or when it is forbidden.
   */
  private readMemberName(object: Record<string, unknown>, level: number): string {
    this.skipSpace();
    if (this.text.charCodeAt(this.i) !== 34) this.fail(this.i >= this.text.length ? 'unexpected end of the text' : 'expected a member name in double quotes');
    const at = this.i;
    const name = this.readString();
    if (FORBIDDEN_NAMES.has(name)) throw new BadRequest(`The body has a member named "${name}", which no FHIR element has (at ${this.pointer(level, name)})`, 'structure');
    if (Object.prototype.hasOwnProperty.call(object, name)) {
      throw new BadRequest(`The body has the member "${name}" twice in the same object (at ${this.pointer(level, name)}, position ${at}): each name may appear once`, 'structure');
    }
    this.skipSpace();
    if (this.text.charCodeAt(this.i++) !== 58 /* : */) {
      this.i--;
      this.fail("expected ':' after a member name");
    }
    this.skipSpace();
    return name;
  }

  private readString(): string {
    const text = this.text;
    const start = this.i + 1;
    // the closing quote is the first one not escaped by an odd run of backslashes
    let end = start - 1;
    for (;;) {
      end = text.indexOf('"', end + 1);
      if (end < 0) this.fail('a string is not terminated');
      let backslashes = 0;
      while (end - backslashes - 1 >= start && text.charCodeAt(end - backslashes - 1) === 92) backslashes++;
      if (backslashes % 2 === 0) break;
    }
    const raw = text.slice(start, end);
    if (CONTROL.test(raw)) this.fail('a string holds a control character that must be escaped');
    this.i = end + 1;
    if (!raw.includes('\\')) return raw;
    let value: string;
    try {
      // escapes are few and short: the platform decodes them and checks each one
      value = JSON.parse(text.slice(start - 1, end + 1)) as string;
    } catch {
      this.i = start - 1;
      return this.fail('a string has an escape sequence that is not valid');
    }
    // NUL and lone surrogates can only come in as \u escapes: the text itself was decoded from UTF-8
    if (UNSTORABLE.test(value)) throw new BadRequest('The body holds a NUL character or an unpaired surrogate, which a FHIR string cannot hold', 'invalid');
    return value;
  }

  private readNumber(): number {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.text);
    if (!m) return this.fail('a number is not valid');
    const literal = m[0];
    this.i += literal.length;
    const value = Number(literal);
    if (String(value) !== literal) (this.decimals ??= new Map()).set(this.pointer(this.stack.length), literal);
    return value;
  }

  /** JSON Pointer of the value the first `levels` frames lead to, then of its member `name` if given. */
  private pointer(levels: number, name?: string): string {
    const parts: string[] = [];
    for (const frame of this.stack.slice(0, levels)) parts.push(Array.isArray(frame.container) ? String(frame.container.length) : escapePointer(frame.key));
    if (name !== undefined) parts.push(escapePointer(name));
    return '/' + parts.join('/');
  }

  private skipSpace(): void {
    const text = this.text;
    let c = text.charCodeAt(this.i);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = text.charCodeAt(++this.i);
  }

  private fail(reason: string): never {
    throw new BadRequest(`The body is not valid JSON: ${reason} at position ${this.i}`, 'structure');
  }
}

const OPENED = Symbol('opened');

/**
 * The value of a JSON text (a leading UTF-8 byte order mark allowed, RFC 8259 §8.1) and
 * the texts of its numbers that a JavaScript number would rewrite. Throws BadRequest (400)
 * for text that is not JSON or holds what the server refuses, PayloadTooLarge (413) past
 * a limit; every message says where or which limit.
 */
export function readJson(text: string, limits: JsonLimits): JsonRead {
  const json = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const read = new Reader(json, limits).read();
  return read;
}

/** The read limits of the server's settings (JSON_MAX_DEPTH, JSON_MAX_NODES, JSON_MAX_ARRAY_LENGTH), as readJson takes them. */
export function jsonLimits(config: { jsonMaxDepth: number; jsonMaxNodes: number; jsonMaxArrayLength: number }): { maxDepth: number; maxNodes: number; maxArrayLength: number } {
  return { maxDepth: config.jsonMaxDepth, maxNodes: config.jsonMaxNodes, maxArrayLength: config.jsonMaxArrayLength };
}

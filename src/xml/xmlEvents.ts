/**
 * The events of an XML 1.0 document with namespaces, for request bodies, read by saxes
 * (strict, non-validating, namespace-aware; decision 011). This module holds what FHIR
 * needs on top of it and the guarantees of decision 005, so that none depends on a default:
 *
 * - no DTD: a DOCTYPE is an error (saxes reports it as an event once its text is read; it
 *   neither reads entity declarations nor fetches anything), and the entity table is set to
 *   the five predefined entities, so `&nbsp;` or any other name is an error; character
 *   references must name XML characters;
 * - characters XML does not allow and unpaired surrogates are refused before parsing: saxes
 *   pairs a high surrogate with whatever follows it, which could swallow a delimiter;
 * - processing instructions and the XML declaration's encoding are passed up (the reader
 *   refuses all but a UTF-8 declaration).
 *
 * Offsets are UTF-16 indexes in the text, so that a caller can slice what was sent.
 */
import { EventName, EventNameToHandler, SaxesParser, SaxesTagNS } from 'saxes';

export class XmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

export interface XmlAttribute {
  /** As written, with its prefix. */
  name: string;
  prefix: string;
  local: string;
  /** Namespace of a prefixed attribute; '' for an unprefixed one (attributes take no default namespace). */
  uri: string;
  value: string;
}

export interface XmlTag {
  name: string;
  prefix: string;
  local: string;
  uri: string;
  attributes: XmlAttribute[];
  /** Offset of its `<`. */
  start: number;
}

export interface XmlHandler {
  /** The encoding the XML declaration names, if it is there and names one. */
  xmlDeclaration(encoding: string | undefined): void;
  openTag(tag: XmlTag): void;
  /** `end` is the offset just past the closing `>`. */
  closeTag(tag: XmlTag, end: number): void;
  text(text: string): void;
  cdata(text: string): void;
  comment(text: string): void;
  processingInstruction(target: string, body: string): void;
}

/** The five entities XML predefines (§4.6), and no other: there is no DTD to declare one. */
const ENTITIES: Record<string, string> = Object.freeze(Object.assign(Object.create(null), { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }));

/** Characters XML 1.0 does not allow (§2.2). */
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;
/** Halves of surrogate pairs without their other half (looked for once `isWellFormed` says there is one). */
const UNPAIRED = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** ES2024, in Node 20; not yet in the ES2022 library the project compiles against. */
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** saxes' messages, said for someone who wrote the body (the rest are passed as they are). */
const MESSAGES: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^undefined entity\.$/, () => 'an entity other than &lt; &gt; &amp; &quot; &apos; (the entities of a DTD, &nbsp; &eacute; …, are not defined without one)'],
  [/^disallowed character in entity name\.$|^empty entity name\.$/, () => '"&" that does not start a reference: write &amp;'],
  [/^malformed character entity\.$/, () => 'a character reference that is not an XML character'],
  [/^the string "\]\]>" is disallowed in char data\.$/, () => '"]]>" is not allowed in text'],
  [/^malformed comment\.$/, () => '"--" is not allowed in a comment'],
  [/^duplicate attribute: (.*)\.$/, (m) => `the attribute ${m[1]} appears twice`],
  [/^unquoted attribute value\.$|^value must be quoted\.$/, () => 'an attribute value must be quoted'],
  [/^no whitespace between attributes\.$/, () => 'expected white space between attributes'],
  [/^unexpected close tag\.$/, () => 'a closing tag does not close the element open'],
  [/^text data outside of root node\.$/, () => 'text outside the root element'],
  [/^document must contain a root element\.$/, () => 'no root element'],
  [/^documents may contain only one root\.$/, () => 'a second root element'],
  [/XML declaration (?:must|is allowed only) .*at the start of the document\.$/, () => 'the XML declaration must come first'],
  [/^unbound namespace prefix: (.*)\.$/, (m) => `the prefix ${m[1]} is not bound to a namespace`],
];

function explain(saxesMessage: string): string {
  const message = saxesMessage.replace(/^\d+:\d+: /, '');
  for (const [pattern, say] of MESSAGES) {
    const m = pattern.exec(message);
    if (m) return say(m);
  }
  return message.replace(/\.$/, '');
}

const REFERENCE = /&(?:#x[0-9A-Fa-f]+|#[0-9]+|[A-Za-z_:][-\w.:\u00B7-\uFFFF]*);/y;

/**
 * The first "&" that starts no reference, outside comments and CDATA sections (-1 if none).
 * saxes reads what follows a "&" up to the next ";" and reports the fault there or at the
 * end; this finds where it is. Run on errors only; linear (indexOf moves forward).
 */
function strayAmpersand(text: string, before: number): number {
  // the next comment and CDATA section, found again only once passed
  let comment = -2;
  let cdata = -2;
  for (let at = 0; at < before; ) {
    const amp = text.indexOf('&', at);
    if (amp < 0 || amp >= before) return -1;
    if (comment !== -1 && comment < at) comment = text.indexOf('<!--', at);
    if (cdata !== -1 && cdata < at) cdata = text.indexOf('<![CDATA[', at);
    const inComment = comment >= 0 && comment < amp;
    const inCdata = cdata >= 0 && cdata < amp;
    if (inComment || inCdata) {
      // a comment or section opens before the "&": skip past its end, the "&" may be in it
      const first = inComment && (!inCdata || comment < cdata);
      const close = first ? text.indexOf('-->', comment + 4) : text.indexOf(']]>', cdata + 9);
      if (close < 0) return -1;
      at = close + 3;
      continue;
    }
    REFERENCE.lastIndex = amp;
    if (!REFERENCE.test(text)) return amp;
    at = REFERENCE.lastIndex;
  }
  return -1;
}

const attributesOf = (tag: SaxesTagNS): XmlAttribute[] => Object.values(tag.attributes).map(({ name, prefix, local, uri, value }) => ({ name, prefix, local, uri, value }));

type Parser = SaxesParser<{ xmlns: true; position: true }>;
type Handler<E extends EventName> = EventNameToHandler<{ xmlns: true }, E>;

/** The fields where `SaxesParser.on` keeps each handler (saxes.js, EVENT_NAME_TO_HANDLER_NAME). */
interface HandlerSlots {
  errorHandler: Handler<'error'>;
  doctypeHandler: Handler<'doctype'>;
  xmldeclHandler: Handler<'xmldecl'>;
  piHandler: Handler<'processinginstruction'>;
  openTagHandler: Handler<'opentag'>;
  closeTagHandler: Handler<'closetag'>;
  textHandler: Handler<'text'>;
  cdataHandler: Handler<'cdata'>;
  commentHandler: Handler<'comment'>;
}
const SLOT_OF_EVENT: Record<keyof HandlerSlots, EventName> = {
  errorHandler: 'error',
  doctypeHandler: 'doctype',
  xmldeclHandler: 'xmldecl',
  piHandler: 'processinginstruction',
  openTagHandler: 'opentag',
  closeTagHandler: 'closetag',
  textHandler: 'text',
  cdataHandler: 'cdata',
  commentHandler: 'comment',
};

/**
 * Sets the handlers as `on` would, by name. `on` stores them under computed keys, and V8
 * turns an object given that many properties so into a dictionary: every field the parser
 * reads per character is then looked up, and a 20 MB body takes 0.7 s instead of 0.15 s.
 */
function setHandlers(parser: Parser, events: HandlerSlots): void {
  const slots = parser as unknown as HandlerSlots;
  slots.errorHandler = events.errorHandler;
  slots.doctypeHandler = events.doctypeHandler;
  slots.xmldeclHandler = events.xmldeclHandler;
  slots.piHandler = events.piHandler;
  slots.openTagHandler = events.openTagHandler;
  slots.closeTagHandler = events.closeTagHandler;
  slots.textHandler = events.textHandler;
  slots.cdataHandler = events.cdataHandler;
  slots.commentHandler = events.commentHandler;
}

// The field names are saxes' own, not its API: if a version names them otherwise, fail here, at start-up.
{
  const probe = new SaxesParser({ xmlns: true });
  for (const [slot, event] of Object.entries(SLOT_OF_EVENT)) {
    const marker = () => undefined;
    probe.on(event, marker);
    if ((probe as unknown as Record<string, unknown>)[slot] !== marker) throw new Error(`saxes keeps the ${event} handler elsewhere than ${slot}: src/xml/xmlEvents.ts needs updating`);
  }
}

/** Calls the handler for each part of `text`, in order; throws XmlSyntaxError at the first fault. */
export function readXmlEvents(text: string, handler: XmlHandler): void {
  const bad = NOT_XML_CHAR.exec(text);
  if (bad) throw new XmlSyntaxError(`the character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()} is not allowed in XML`, bad.index);
  if (!isWellFormed(text)) {
    const unpaired = UNPAIRED.exec(text)!;
    throw new XmlSyntaxError(`an unpaired surrogate (U+${unpaired[0].charCodeAt(0).toString(16).toUpperCase()}) is not a character`, unpaired.index);
  }
  const parser: Parser = new SaxesParser({ xmlns: true, position: true });
  parser.ENTITIES = ENTITIES;
  /** The open elements as handed on (closed innermost first, as saxes closes them). */
  const open: XmlTag[] = [];

  let sawRoot = false;

  const events: HandlerSlots = {
    errorHandler(e) {
      const at = parser.position;
      const amp = strayAmpersand(text, at);
      if (amp >= 0) throw new XmlSyntaxError('"&" that does not start a reference: write &amp;', amp);
      let message = explain(e.message);
      // saxes meets "<" in an attribute value as a disallowed character; the reason is clearer said
      if (message === 'disallowed character' && text.charCodeAt(at - 1) === 60) message = '"<" in the value of an attribute: write &lt;';
      else if (message === 'text outside the root element') message = sawRoot ? 'text after the root element' : 'text before the root element';
      throw new XmlSyntaxError(message, at);
    },
    doctypeHandler() {
      throw new XmlSyntaxError('a DOCTYPE is not accepted (no DTD, no entity declarations)', text.lastIndexOf('<!DOCTYPE', parser.position));
    },
    xmldeclHandler: (decl) => handler.xmlDeclaration(decl.encoding),
    piHandler: (pi) => handler.processingInstruction(pi.target, pi.body),
    openTagHandler(t) {
      // the tag ends here; its `<` is the last one before (an attribute value holds no `<`)
      const start = text.lastIndexOf('<', parser.position - 1);
      const tag: XmlTag = { name: t.name, prefix: t.prefix, local: t.local, uri: t.uri, attributes: attributesOf(t), start };
      sawRoot = true;
      open.push(tag);
      handler.openTag(tag);
    },
    closeTagHandler(t) {
      const end = parser.position;
      if (!t.isSelfClosing) {
        // saxes hands the open element to this handler before it reports a closing tag of
        // another name: check first, so that nothing is done with an element closed wrongly
        const lt = text.lastIndexOf('</', end - 2);
        const written = text.slice(lt + 2, end - 1).trimEnd();
        if (written !== t.name) throw new XmlSyntaxError(`</${written}> does not close <${t.name}>`, lt);
      }
      handler.closeTag(open.pop()!, end);
    },
    textHandler: (t) => handler.text(t),
    cdataHandler: (t) => handler.cdata(t),
    commentHandler: (t) => handler.comment(t),
  };
  setHandlers(parser, events);
  parser.write(text).close();
}

/** Line and column (1-based) of an offset, for messages. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let at = text.indexOf('\n'); at >= 0 && at < offset; at = text.indexOf('\n', at + 1)) {
    line++;
    lineStart = at + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Narrative (xhtml) checks: what the HL7 validator does when parsing the div
 * (well-formedness, root name and namespace) plus the `htmlChecks()` of
 * txt-1 / txt-2, natively (FHIRPath.js has no htmlChecks()). As the HL7
 * validator, each problem is reported, and the txt-1 / txt-2 invariant failure
 * once more on top of them (`keys`).
 *
 * The div is read twice: as XML (what FHIR says it is, and what XML tools read)
 * and as a browser's HTML parser reads it (parse5, the HTML standard's algorithm),
 * because a narrative is shown in browsers, through innerHTML more often than not.
 * The rules of src/validation/narrativePolicy.ts apply to the elements each reader
 * finds, and the two readers must find the same tags, with the same attributes,
 * and the same comments at the same places: markup one of them takes for text or
 * for a comment (`<!--><img onerror=…>`) is how a checker is made to pass what a
 * browser runs. Nesting may differ: HTML reads the XML empty-element form of a
 * non-void element (`<td/>`) as a start tag, and closes a `<p>` before a block.
 */
import { defaultTreeAdapter, html as HTML, parseFragment } from 'parse5';
import type { DefaultTreeAdapterMap } from 'parse5';
import { elementProblems, NarrativeElement, XHTML_NS } from './narrativePolicy';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

export interface XhtmlProblem {
  code: 'invalid' | 'value';
  message: string;
  /** invariants that fail because of this problem */
  keys: ('txt-1' | 'txt-2')[];
}

export function checkXhtml(div: string): XhtmlProblem[] {
  const xml = readXml(div);
  if ('error' in xml) return [...xml.rootProblems, { code: 'invalid', message: `Error parsing XHTML: ${xml.error}`, keys: ['txt-1'] }];
  const problems: XhtmlProblem[] = [...xml.rootProblems];
  const seen = new Set<string>();
  const report = (p: { code: XhtmlProblem['code']; message: string }) => {
    if (seen.has(p.message)) return;
    seen.add(p.message);
    problems.push({ ...p, keys: ['txt-1'] });
  };
  // the root's namespace is reported above, as the HL7 validator does
  const [root, ...inner] = xml.tags;
  for (const tag of [{ ...root, attrs: root.attrs.filter(([a]) => a !== 'xmlns') }, ...inner]) for (const p of elementProblems(tag)) report(p);
  for (const tag of xml.tags) {
    // HTML ignores the '/' of a non-void element: the link would cover everything that follows it
    if (tag.empty && tag.name === 'a') report({ code: 'invalid', message: `The XHTML is read differently by a browser: <a/> at position ${tag.offset} is a link over all that follows (write <a ...></a>)` });
  }

  const xmlAt = new Map<number, Tag>();
  for (const tag of xml.tags) xmlAt.set(tag.offset, tag);
  const xmlComments = new Map(xml.comments.map((c) => [c.offset, c.data]));
  const tagsSeen = new Set<number>();
  const commentsSeen = new Set<number>();
  const fragment = browserTree(div);
  if (fragment.childNodes.filter(isElement).length !== 1) report({ code: 'invalid', message: 'The XHTML is read differently by a browser: more than one element at the top' });
  const pending: Node[] = fragment.childNodes.slice();
  for (let node = pending.pop(); node; node = pending.pop()) {
    if (node.nodeName === '#comment') {
      const comment = node as DefaultTreeAdapterMap['commentNode'];
      const offset = comment.sourceCodeLocation?.startOffset ?? -1;
      commentsSeen.add(offset);
      if (xmlComments.get(offset) !== comment.data) report({ code: 'invalid', message: `The XHTML is read differently by a browser: the comment at position ${offset} is not a comment in XML` });
    }
    if (!isElement(node)) continue;
    for (const child of isHtmlTemplate(node) ? node.content.childNodes : node.childNodes) pending.push(child);
    const offset = node.sourceCodeLocation?.startTag?.startOffset;
    // what the browser reads alone, or made up itself (tbody, a <p> for a stray </p>), obeys the same rules
    let read = browserElement(node);
    if (offset !== undefined) {
      // the adoption agency clones formatting elements, attributes and location included: one tag
      if (tagsSeen.has(offset)) continue;
      tagsSeen.add(offset);
      const twin = xmlAt.get(offset);
      if (twin && sameTag(twin, node)) {
        // so does the browser's reading of a tag XML reads alike, where its values differ: they keep the
        // tabs and line breaks XML reads as spaces, and a URL parser drops them ("java<TAB>script:" is
        // javascript:). The values read alike were checked with the XML's tags.
        const differing = twin.attrs.map(([n, v]) => [n, v, node.attrs.find((a) => a.name === n.toLowerCase() && !a.prefix)!.value] as const).filter(([, v, html]) => html !== v);
        read = { name: twin.name, attrs: differing.map(([n, , html]) => [n, html] as const) };
      } else {
        report({ code: 'invalid', message: `The XHTML is read differently by a browser: <${node.tagName}> at position ${offset} ${twin ? `is <${twin.name}> with other attributes` : 'is not a tag'} in XML` });
      }
    }
    for (const p of elementProblems(read)) report(p);
  }
  for (const tag of xml.tags) {
    if (!tagsSeen.has(tag.offset)) report({ code: 'invalid', message: `The XHTML is read differently by a browser: <${tag.name}> at position ${tag.offset} is not a tag in HTML` });
  }
  for (const c of xml.comments) {
    if (!commentsSeen.has(c.offset)) report({ code: 'invalid', message: `The XHTML is read differently by a browser: the comment at position ${c.offset} is not a comment in HTML` });
  }

  if (!/[^ \t\r\n]/.test(xml.text) && !xml.tags.some((t) => t.name === 'img')) {
    // reported as the txt-2 invariant failure only
    problems.push({ code: 'value', message: '', keys: ['txt-2'] });
  }
  return problems;
}

interface Tag extends NarrativeElement {
  offset: number;
  /** written as an XML empty element (<x/>) */
  empty?: boolean;
}

/** Both readers turn CR LF and CR into LF (XML §2.11, HTML's input stream); XML then reads tabs and newlines in values as spaces (§3.3.3). */
const whitespaceAsSpace = (v: string) => v.replace(/\r\n?/g, '\n').replace(/[\t\n]/g, ' ');

function sameTag(xml: Tag, html: Element): boolean {
  if (html.namespaceURI !== HTML.NS.HTML || xml.name !== html.nodeName || xml.attrs.length !== html.attrs.length) return false;
  return xml.attrs.every(([n, v]) => {
    const name = n.toLowerCase();
    const other = html.attrs.find((a) => a.name === name && !a.prefix)?.value;
    return other === v || (other !== undefined && whitespaceAsSpace(other) === whitespaceAsSpace(v));
  });
}

// ---------------------------------------------------------------- HTML, as a browser reads it

/** innerHTML of an HTML div: the tree a browser builds when it shows the narrative in a page. */
function browserTree(div: string): DefaultTreeAdapterMap['documentFragment'] {
  const context = defaultTreeAdapter.createElement('div', HTML.NS.HTML, []);
  return parseFragment(context, div, { sourceCodeLocationInfo: true });
}

function browserElement(node: Element): NarrativeElement {
  return {
    // foreign elements (svg, math) keep their case in tagName
    name: node.namespaceURI === HTML.NS.HTML ? node.nodeName : node.tagName,
    attrs: node.attrs.map((a) => [a.prefix ? `${a.prefix}:${a.name}` : a.name, a.value] as const),
  };
}

const isElement = (node: Node): node is Element => 'tagName' in node;
/** An HTML <template> keeps its children apart, in its content; a <template> in SVG or MathML is an element like another. */
const isHtmlTemplate = (node: Element): node is DefaultTreeAdapterMap['template'] => node.nodeName === 'template' && node.namespaceURI === HTML.NS.HTML;

// ---------------------------------------------------------------- XML, strictly

interface XmlRead {
  tags: Tag[];
  comments: { offset: number; data: string }[];
  /** the text content, references decoded */
  text: string;
  /** problems with the root element, reported as the HL7 validator does (no invariant) */
  rootProblems: XhtmlProblem[];
}

const NAME = /[A-Za-z_][A-Za-z0-9_:.-]*/y;
const SPACE = /[ \t\r\n]*/y;
const XML_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
/** Characters XML 1.0 does not allow (§2.2): C0 controls but tab, CR and LF. */
const NOT_XML_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;

class Malformed extends Error {}

const ENTITY_NAME = /^[A-Za-z][A-Za-z0-9]{1,31}$/;
const namedEntities = new Map<string, string | null>();

/** The text of an HTML named entity (`nbsp` → U+00A0) as the HTML parser decodes it; undefined when HTML has no such entity. */
function htmlNamedEntity(name: string): string | undefined {
  if (!ENTITY_NAME.test(name)) return undefined;
  let text = namedEntities.get(name);
  if (text === undefined) {
    const node = parseFragment(`&${name};`).childNodes[0];
    const decoded = node && defaultTreeAdapter.isTextNode(node) ? node.value : undefined;
    // HTML also reads a known prefix without its ';' (&notit; is ¬ then "it;"): only a whole entity counts
    text = decoded !== undefined && decoded !== `&${name};` && !decoded.endsWith(';') ? decoded : null;
    // the names looked up are bounded by what clients send: keep only the known ones
    if (text !== null || namedEntities.size < 4096) namedEntities.set(name, text);
  }
  return text ?? undefined;
}

/**
 * A well-formedness check of XML without a DTD, CDATA or processing instructions
 * (none is allowed in a narrative): one root element, matching end tags, quoted
 * attribute values without '<', unique attribute names, comments without '--',
 * only the XML entities and character references (an HTML named entity is an error, reported
 * without stopping the reading).
 */
function readXml(div: string): XmlRead | { error: string; rootProblems: XhtmlProblem[] } {
  const out: XmlRead = { tags: [], comments: [], text: '', rootProblems: [] };
  const s = div;
  let i = 0;
  const stack: string[] = [];
  let rootClosed = false;
  const fail = (message: string) => {
    throw new Malformed(message);
  };
  const skipSpace = () => {
    SPACE.lastIndex = i;
    SPACE.exec(s);
    i = SPACE.lastIndex;
  };
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(s);
    if (!m) fail(`Malformed XHTML: a name was expected at position ${i}`);
    i = NAME.lastIndex;
    return m![0];
  };
  const decode = (raw: string, at: number): string =>
    raw.replace(/&([^;&<]*);?/g, (ref, body: string) => {
      if (!ref.endsWith(';')) fail(`Malformed XHTML: '&' not followed by a reference (near position ${at})`);
      const numeric = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
      if (numeric) {
        const code = numeric[1] ? parseInt(numeric[1], 16) : Number(numeric[2]);
        const char = code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : '\u0000';
        if (NOT_XML_CHAR.test(char)) fail(`Malformed XHTML: the character reference ${ref} is not an XML character`);
        return char;
      }
      if (body in XML_ENTITIES) return XML_ENTITIES[body];
      // an HTML named entity: not XML, so an error (as the HL7 validator says it), but the
      // rest of the narrative is still read, with the character a browser shows for it
      const named = htmlNamedEntity(body);
      if (named !== undefined) {
        const message = `Illegal entity '${ref}': XHTML in FHIR has only the XML entities (&lt; &gt; &amp; &quot; &apos;) and character references such as &#160;`;
        if (!out.rootProblems.some((p) => p.message === message)) out.rootProblems.push({ code: 'invalid', message, keys: [] });
        return named;
      }
      return fail(`Malformed XHTML: the entity ${ref} is not defined: XHTML in FHIR has only the XML entities (&lt; &gt; &amp; &quot; &apos;) and character references such as &#160;`) as never;
    });
  try {
    if (NOT_XML_CHAR.test(s)) fail('Malformed XHTML: a control character is not allowed in XML');
    skipSpace();
    if (s[i] !== '<') fail('the narrative div is not XHTML');
    while (i < s.length) {
      if (rootClosed) {
        skipSpace();
        if (i < s.length) fail(`Malformed XHTML: content after the end of the root element at position ${i}`);
        break;
      }
      const lt = s.indexOf('<', i);
      const textEnd = lt < 0 ? s.length : lt;
      if (textEnd > i) {
        const raw = s.slice(i, textEnd);
        if (stack.length === 0) fail(`Malformed XHTML: text outside the root element at position ${i}`);
        if (raw.includes(']]>')) fail("Malformed XHTML: ']]>' is not allowed in text");
        out.text += decode(raw, i);
        i = textEnd;
        continue;
      }
      if (s.startsWith('<!--', i)) {
        const end = s.indexOf('-->', i + 4);
        if (end < 0) fail('Malformed XHTML: unterminated comment');
        const data = s.slice(i + 4, end);
        if (data.includes('--') || data.endsWith('-')) fail(`Malformed XHTML: '--' inside the comment at position ${i}`);
        out.comments.push({ offset: i, data });
        i = end + 3;
        continue;
      }
      if (/^<!doctype/i.test(s.slice(i, i + 9))) fail('Malformed XHTML: Found a DocType declaration, and these are not allowed (XXE security vulnerability protection)');
      if (s.startsWith('<![CDATA[', i)) fail('CDATA is not allowed');
      if (s.startsWith('<?', i)) fail('No processing instructions allowed in resources');
      if (s.startsWith('<!', i)) fail(`Malformed XHTML: markup declarations are not allowed (position ${i})`);
      if (s.startsWith('</', i)) {
        i += 2;
        const n = name();
        skipSpace();
        if (s[i] !== '>') fail(`Malformed XHTML: bad end tag </${n}> at position ${i}`);
        i++;
        const top = stack.pop();
        if (top !== n) fail(`Malformed XHTML: Found "</${n}>" expecting "${top ? `</${top}>` : 'end of content'}"`);
        if (stack.length === 0) rootClosed = true;
        continue;
      }
      const offset = i;
      i++;
      const n = name();
      const attrs: [string, string][] = [];
      let selfClosing = false;
      for (;;) {
        const before = i;
        skipSpace();
        if (s[i] === '>') {
          i++;
          break;
        }
        if (s.startsWith('/>', i)) {
          i += 2;
          selfClosing = true;
          break;
        }
        if (i === before) fail(`Malformed XHTML: bad tag <${n}> at position ${offset}`);
        const an = name();
        skipSpace();
        if (s[i] !== '=') fail(`Malformed XHTML: the attribute ${an} on <${n}> has no value (position ${i})`);
        i++;
        skipSpace();
        const quote = s[i];
        if (quote !== '"' && quote !== "'") fail(`Malformed XHTML: the value of ${an} on <${n}> is not quoted (position ${i})`);
        const end = s.indexOf(quote, i + 1);
        if (end < 0) fail(`Malformed XHTML: the value of ${an} on <${n}> is not closed`);
        const raw = s.slice(i + 1, end);
        if (raw.includes('<')) fail(`Malformed XHTML: '<' in the value of ${an} on <${n}>`);
        if (attrs.some(([a]) => a === an)) fail(`Malformed XHTML: the attribute ${an} appears twice on <${n}>`);
        // end-of-line handling and attribute-value normalisation (XML §2.11, §3.3.3): literal whitespace is a space
        attrs.push([an, decode(raw.replace(/\r\n?/g, '\n').replace(/[\t\n]/g, ' '), i)]);
        i = end + 1;
      }
      if (out.tags.length === 0) {
        if (n !== 'div') out.rootProblems.push({ code: 'invalid', message: `Wrong name on the XHTML ('${n}') - must start with div`, keys: [] });
        const ns = attrs.find(([a]) => a === 'xmlns')?.[1];
        if (ns !== XHTML_NS) out.rootProblems.push({ code: 'invalid', message: `Wrong namespace on the XHTML ('${ns ?? 'null'}', should be '${XHTML_NS}')`, keys: [] });
      }
      out.tags.push({ name: n, attrs, offset, empty: selfClosing });
      if (selfClosing) {
        if (stack.length === 0) rootClosed = true;
      } else stack.push(n);
    }
    if (stack.length) fail(`Malformed XHTML: unclosed element <${stack[stack.length - 1]}>`);
  } catch (e) {
    if (e instanceof Malformed) return { error: e.message, rootProblems: out.rootProblems };
    throw e;
  }
  return out;
}

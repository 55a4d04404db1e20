/**
 * Narrative (xhtml) checks: what the HL7 validator does when parsing the div
 * (well-formedness, root name and namespace) plus the `htmlChecks()` of
 * txt-1 / txt-2, natively (FHIRPath.js has no htmlChecks()). As the HL7
 * validator, each problem is reported, and the txt-1 / txt-2 invariant failure
 * once more on top of them (`keys`).
 */

const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** Elements allowed in FHIR narrative (the HL7 validator's list). */
const ELEMENTS = new Set([
  'p', 'br', 'div', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'a', 'span', 'b', 'em', 'i', 'strong', 'small', 'big', 'tt',
  'dfn', 'q', 'var', 'abbr', 'acronym', 'cite', 'blockquote', 'hr', 'address', 'bdo', 'kbd', 'sub', 'sup', 'ul', 'ol',
  'li', 'dl', 'dt', 'dd', 'pre', 'table', 'caption', 'colgroup', 'col', 'thead', 'tr', 'tfoot', 'tbody', 'th', 'td',
  'code', 'samp', 'img', 'map', 'area',
]);

/** Attributes allowed on any element (the HL7 validator's list). */
const ATTRIBUTES = new Set([
  'title', 'style', 'class', 'id', 'lang', 'xml:lang', 'dir', 'accesskey', 'tabindex',
  // tables
  'span', 'width', 'align', 'valign', 'char', 'charoff', 'abbr', 'axis', 'headers', 'scope', 'rowspan', 'colspan',
]);
/** Attributes allowed on some elements only. */
const ELEMENT_ATTRIBUTES = new Set([
  'a.href', 'a.name', 'img.src', 'img.border', 'div.xmlns', 'blockquote.cite', 'q.cite', 'a.charset', 'a.type', 'a.hreflang',
  'a.rel', 'a.rev', 'a.shape', 'a.coords', 'img.alt', 'img.longdesc', 'img.height', 'img.width', 'img.usemap', 'img.ismap',
  'map.name', 'area.shape', 'area.coords', 'area.href', 'area.nohref', 'area.alt', 'table.summary', 'table.width',
  'table.border', 'table.frame', 'table.rules', 'table.cellspacing', 'table.cellpadding', 'pre.space', 'td.nowrap',
]);

const TAG = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[^\s=/>]+(?:\s*=\s*(?:"[^"]*"|'[^']*'))?)*)\s*(\/?)>/y;
const ATTR = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'))?/g;

export interface XhtmlProblem {
  code: 'invalid' | 'value';
  message: string;
  /** invariants that fail because of this problem */
  keys: ('txt-1' | 'txt-2')[];
}

export function checkXhtml(div: string): XhtmlProblem[] {
  const problems: XhtmlProblem[] = [];
  const malformed = (message: string): XhtmlProblem[] => [...problems, { code: 'invalid', message: `Error parsing XHTML: ${message}`, keys: ['txt-1'] }];
  const s = div.trim();
  let i = 0;
  const stack: string[] = [];
  let text = '';
  let first = true;
  let hasImg = false;
  while (i < s.length) {
    const lt = s.indexOf('<', i);
    if (lt < 0) {
      text += s.slice(i);
      break;
    }
    text += s.slice(i, lt);
    if (s.startsWith('<!--', lt)) {
      const end = s.indexOf('-->', lt + 4);
      if (end < 0) return malformed('Malformed XHTML: unterminated comment');
      i = end + 3;
      continue;
    }
    if (s.startsWith('<!DOCTYPE', lt) || s.startsWith('<!doctype', lt)) {
      return malformed('Malformed XHTML: Found a DocType declaration, and these are not allowed (XXE security vulnerability protection)');
    }
    if (s.startsWith('<![CDATA[', lt)) return malformed('CDATA is not allowed');
    if (s.startsWith('<?', lt)) return malformed('No processing instructions allowed in resources');
    TAG.lastIndex = lt;
    const m = TAG.exec(s);
    if (!m) return malformed(`Malformed XHTML: bad tag at position ${lt}`);
    i = TAG.lastIndex;
    const closing = m[1] === '/';
    const name = m[2];
    const selfClosing = m[4] === '/';
    const attrs = parseAttrs(m[3]);
    if (first) {
      first = false;
      if (name !== 'div') problems.push({ code: 'invalid', message: `Wrong name on the XHTML ('${name}') - must start with div`, keys: [] });
      if (attrs.get('xmlns') !== XHTML_NS) {
        problems.push({ code: 'invalid', message: `Wrong namespace on the XHTML ('${attrs.get('xmlns') ?? 'null'}', should be '${XHTML_NS}')`, keys: [] });
      }
    }
    if (closing) {
      const top = stack.pop();
      if (top !== name) return malformed(`Malformed XHTML: Found "</${name}>" expecting "${top ? `</${top}>` : 'end of content'}"`);
      continue;
    }
    const local = name.includes(':') ? name.slice(name.indexOf(':') + 1) : name;
    if (!ELEMENTS.has(local)) problems.push({ code: 'value', message: `Illegal element name in the XHTML ('${name}')`, keys: ['txt-1'] });
    if (local === 'img') hasImg = true;
    for (const an of attrs.keys()) {
      if (an === 'xmlns' || an.startsWith('xmlns:') || ATTRIBUTES.has(an) || ELEMENT_ATTRIBUTES.has(`${local}.${an}`)) continue;
      problems.push({ code: 'value', message: `Illegal attribute name in the XHTML ('${an}' on '${name}')`, keys: ['txt-1'] });
    }
    if (!selfClosing) stack.push(name);
  }
  if (first) return malformed('the narrative div is not XHTML');
  if (stack.length) return malformed(`Malformed XHTML: unclosed element <${stack[stack.length - 1]}>`);
  const plain = text.replace(/&[a-zA-Z0-9#]+;/g, 'x').trim();
  if (!plain.length && !hasImg) {
    // reported as the txt-2 invariant failure only
    problems.push({ code: 'value', message: '', keys: ['txt-2'] });
  }
  return problems;
}

function parseAttrs(src: string): Map<string, string> {
  const out = new Map<string, string>();
  ATTR.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = ATTR.exec(src))) out.set(m[1], m[2] ?? m[3] ?? '');
  return out;
}

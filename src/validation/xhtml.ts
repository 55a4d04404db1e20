/**
 * Narrative (xhtml) checks: what the HL7 validator does when parsing the div
 * plus the `htmlChecks()` of txt-1 / txt-2, natively (FHIRPath.js has no
 * htmlChecks()).
 */

const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** Elements allowed in FHIR narrative (HL7 validator's list). */
const ALLOWED = new Set([
  'p', 'br', 'div', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'a', 'span', 'b', 'em', 'i', 'strong', 'small', 'big', 'tt',
  'dfn', 'q', 'var', 'abbr', 'acronym', 'cite', 'blockquote', 'hr', 'address', 'bdo', 'kbd', 'sub', 'sup', 'ul', 'ol',
  'li', 'dl', 'dt', 'dd', 'pre', 'table', 'caption', 'colgroup', 'col', 'thead', 'tr', 'tfoot', 'tbody', 'th', 'td',
  'code', 'samp', 'img', 'map', 'area',
  // lenient: basic formatting that some validator versions accept
  'u', 's', 'del', 'ins',
]);

const TAG = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[^\s=/>]+(?:\s*=\s*(?:"[^"]*"|'[^']*'))?)*)\s*(\/?)>/y;
const ATTR = /([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'))?/g;

export interface XhtmlProblem {
  key?: 'txt-1' | 'txt-2';
  message: string;
}

/** Parse-level problems (namespace, root name, well-formedness) and txt-1/txt-2 content rules. */
export function checkXhtml(div: string): XhtmlProblem[] {
  const problems: XhtmlProblem[] = [];
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
      if (end < 0) return [{ message: 'Error parsing XHTML: unterminated comment' }];
      i = end + 3;
      continue;
    }
    if (s.startsWith('<![CDATA[', lt)) {
      return [{ message: 'CDATA is not allowed' }];
    }
    if (s.startsWith('<?', lt)) {
      return [{ message: 'No processing instructions allowed in resources' }];
    }
    TAG.lastIndex = lt;
    const m = TAG.exec(s);
    if (!m) return [{ message: `Error parsing XHTML: malformed tag at position ${lt}` }];
    i = TAG.lastIndex;
    const closing = m[1] === '/';
    const name = m[2];
    const selfClosing = m[4] === '/';
    if (first) {
      first = false;
      if (name !== 'div') problems.push({ message: `Wrong name on the XHTML ('${name}') - must start with div` });
      const attrs = parseAttrs(m[3]);
      if (attrs.get('xmlns') !== XHTML_NS) {
        problems.push({ message: `Wrong namespace on the XHTML ('${attrs.get('xmlns') ?? 'null'}', should be '${XHTML_NS}')` });
      }
    }
    if (closing) {
      const top = stack.pop();
      if (top !== name) return [...problems, { message: `Error parsing XHTML: unexpected closing tag </${name}>${top ? ` (expected </${top}>)` : ''}` }];
      continue;
    }
    const local = name.includes(':') ? name.slice(name.indexOf(':') + 1) : name;
    if (!ALLOWED.has(local)) {
      problems.push({ key: 'txt-1', message: `Illegal element name in the XHTML ('${name}')` });
    }
    if (local === 'img') hasImg = true;
    for (const [an] of parseAttrs(m[3])) {
      if (/^on/i.test(an)) problems.push({ key: 'txt-1', message: `Illegal attribute name in the XHTML ('${an}' on '${name}')` });
    }
    if (!selfClosing) stack.push(name);
  }
  if (first) return [{ message: `Error parsing XHTML: the narrative div is not XHTML` }];
  if (stack.length) problems.push({ message: `Error parsing XHTML: unclosed element <${stack[stack.length - 1]}>` });
  const plain = text.replace(/&[a-zA-Z0-9#]+;/g, 'x').trim();
  if (!plain.length && !hasImg) {
    problems.push({ key: 'txt-2', message: 'The narrative SHALL have some non-whitespace content' });
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

import fc from 'fast-check';
import { parse, parseFragment, defaultTreeAdapter, html as HTML } from 'parse5';
import type { DefaultTreeAdapterMap } from 'parse5';
import { checkXhtml } from '../validation/xhtml';
import { assertOwnRefusal, assertWithinBound, PropertyFailure, PropertySettings, run } from './bounds';

/**
 * The narrative checker (src/validation/xhtml.ts, narrativePolicy.ts) on hostile markup:
 * well-formed XHTML from a grammar of allowed and forbidden tags and attributes with
 * hostile values, markup soup (comments that HTML and XML end differently, CDATA,
 * entities, raw text elements, foreign content), and known XSS vectors spliced in.
 * - checkXhtml answers (it refuses by returning problems) and throws nothing, within the bound;
 * - no narrative it accepts holds, once read as a browser reads it (parse5, as innerHTML
 *   of a div and as the body of a page), a script element or another element that runs
 *   or loads active content, an on* attribute, or a javascript:, vbscript: or (but for
 *   raster images) data: URL.
 */

export interface NarrativeInput {
  div: string;
}

const XHTML_NS = 'http://www.w3.org/1999/xhtml';

const ALLOWED_TAGS = ['div', 'p', 'a', 'img', 'span', 'b', 'i', 'table', 'tr', 'td', 'th', 'tbody', 'ul', 'li', 'pre', 'br', 'hr', 'blockquote', 'q', 'map', 'area', 'code', 'h1'];
const HOSTILE_TAGS = [
  'script', 'SCRIPT', 'svg', 'math', 'iframe', 'style', 'textarea', 'title', 'noscript', 'xmp', 'plaintext', 'template', 'select', 'option', 'noembed',
  'noframes', 'object', 'embed', 'form', 'input', 'button', 'base', 'meta', 'link', 'foreignObject', 'mglyph', 'mtext', 'annotation-xml', 'image', 'svg:script', 'html:script',
];
const ALLOWED_ATTRIBUTES = ['href', 'src', 'title', 'style', 'class', 'id', 'alt', 'name', 'cite', 'longdesc', 'usemap', 'xml:lang', 'lang', 'dir', 'xmlns'];
const HOSTILE_ATTRIBUTES = ['onerror', 'onclick', 'ONLOAD', 'onmouseover', 'on', 'xlink:href', 'srcdoc', 'formaction', 'action', 'data', 'xmlns:xlink', 'background', 'poster', 'srcset', 'http-equiv', 'content', 'attributeName', 'values'];

/** Attribute values as written in the XML source (entities and character references kept). */
const VALUES = [
  'x', '#x', 'Patient/1', 'http://example.org/', 'https://x/', 'mailto:a@b.c', 'urn:uuid:1', '//evil.example/x', '\\\\evil', '',
  'javascript:alert(1)', 'JaVaScRiPt:alert(1)', ' javascript:alert(1)', '\tjava\nscript:alert(1)', 'java&#x09;script:alert(1)', 'java&#x0A;script:alert(1)',
  '&#106;avascript:alert(1)', 'javascript&#58;alert(1)', 'javascript&#x3A;alert(1)', 'javascript&colon;alert(1)', '&#x20;javascript:alert(1)', '&#x0C;javascript:x',
  'java&#173;script:alert(1)', 'vbscript:msgbox(1)', 'jav&#x0D;ascript:x', '&#1;javascript:x', ' &#x7F;javascript:x',
  'data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;', 'data:text/html;base64,PHNjcmlwdD4=', 'data:image/svg+xml,&lt;svg onload=alert(1)&gt;',
  'data:image/svg+xml;base64,PHN2Zz4=', 'data:image/png;base64,iVBORw0KGgo=', 'data:image/png,x', ' data:image/png;base64,x', 'data:image/png ;base64,x',
  'data:image/pngx,x', 'DATA:IMAGE/GIF;base64,R0lG', 'data:,x', 'data:image/jpeg;charset=x;base64,x',
  'color:red', 'background:url(x.png)', 'background:url(javascript:alert(1))', 'background:url(&quot;javascript:x&quot;)', 'width:expression(alert(1))',
  'background-image:url( data:text/html,x )', 'x:url(//evil/x)', '&quot; onerror=&quot;alert(1)', "x' onmouseover='alert(1)", 'alert(1)', '0;url=javascript:alert(1)', 'href',
];

const TEXT = ['x', 'Paul', ' ', '\n', '&lt;script&gt;alert(1)&lt;/script&gt;', '&amp;', '&#160;', '&#x3C;img src=x onerror=alert(1)&#x3E;', 'javascript:alert(1)', '--&gt;', '&lt;!--', '&quot;'];

const escapeAttribute = (v: string) => v.replace(/"/g, '&quot;');

const attribute = fc
  .tuple(fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...ALLOWED_ATTRIBUTES) }, fc.constantFrom(...HOSTILE_ATTRIBUTES)), fc.constantFrom(...VALUES), fc.constantFrom('"', "'", '"', ''))
  .map(([name, value, quote]) => (quote === "'" && !value.includes("'") ? ` ${name}='${value}'` : quote === '' ? ` ${name}=${value || 'x'}` : ` ${name}="${escapeAttribute(value)}"`));

/** XHTML, mostly well formed: what a checker must read closely to accept. */
const wellFormed: fc.Arbitrary<string> = fc.letrec<{ node: string }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 2, arbitrary: fc.constantFrom(...TEXT) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...ALLOWED_TAGS) }, fc.constantFrom(...HOSTILE_TAGS)),
          fc.uniqueArray(attribute, { maxLength: 3, selector: (a) => a.slice(0, a.indexOf('=')) }),
          fc.array(tie('node'), { maxLength: 3 }),
          fc.boolean(),
        )
        .map(([tag, attrs, children, empty]) => (empty && children.length === 0 ? `<${tag}${attrs.join('')}/>` : `<${tag}${attrs.join('')}>${children.join('')}</${tag}>`)),
    },
  ),
})).node;

/** Pieces of markup on which XML and HTML disagree, and known XSS vectors. */
const SOUP = [
  '<!--', '-->', '<!-->', '<!--->', '--!>', '<!-- -- -->', '<!-- x -->', '<![CDATA[', ']]>', '<![CDATA[<img src=x onerror=alert(1)>]]>', '<?xml x?>', '<!DOCTYPE x>',
  '<!x>', '</', '<', '>', '/>', '&', '&amp;', '&lt;', '&#60;', '&#x3c;', '&nbsp;', '&#0;', '&#x110000;', '"', "'", '=', ' ', '\n', '\f', '\r', '\u0000', '\u2028',
  '<img src=x onerror=alert(1)>', '<svg><script>alert(1)</script></svg>', '<svg onload=alert(1)>', '<math><mi><mglyph><style><!--</style><img src onerror=alert(1)>',
  '<noscript><p title="</noscript><img src=x onerror=alert(1)>">', '<a href="javascript&colon;alert(1)">x</a>', '<table><td><script>alert(1)</script>',
  '<svg><style><img src=x onerror=alert(1)></style></svg>', '<select><style></select><img src=x onerror=alert(1)>', '<title><img src=x onerror=alert(1)></title>',
  '<textarea><img src=x onerror=alert(1)></textarea>', '<xmp><img src=x onerror=alert(1)></xmp>', '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;">',
  '<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>', '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
  '<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;/mglyph&gt;&lt;img&Tab;src=1&Tab;onerror=alert(1)&gt;">', '<a href=" javascript:alert(1)">',
  '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>', '<img src="data:image/svg+xml,<svg onload=alert(1)>"/>', '<object data="javascript:alert(1)">',
  '<embed src="javascript:alert(1)">', '<base href="javascript:/">', '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
  '<svg><animate attributeName="href" values="javascript:alert(1)"/></svg>', '<a href="jav&#x09;ascript:alert(1)">', '<div style="background:url(javascript:alert(1))">',
  '<img src="#a" onerror="alert(1)"/>', '<p/onclick=alert(1)>', '<img src=x:x onerror=alert(1)//', '<svg><foreignObject><script>alert(1)</script></foreignObject></svg>',
  '<plaintext><script>', '<noembed><img title="</noembed><img src onerror=alert(1)>"></noembed>', '<template><script>alert(1)</script></template>',
  '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">', '<img src="&#106;avascript:alert(1)"/>', '<a href="&#106;avascript:alert(1)">x</a>',
  '<a href="java&#x0A;script:alert(1)">x</a>', '<img src="&#x20;data:image/svg+xml;base64,PHN2Zz4="/>', '<a title="-->"><img src="#a" onerror="x"/></a>',
  '<p title="<!--"></p>', '<!--<img src="#a" onerror="x"/>-->', '<p><!-- <p title="--><img src=x onerror=alert(1)>"> --></p>', '<br></br>', '<p></p>',
];
const soup = fc.array(fc.constantFrom(...SOUP), { maxLength: 8 }).map((p) => p.join(''));

/** Well-formed markup with soup spliced in. */
const spliced = fc.tuple(wellFormed, fc.nat(), soup).map(([text, at, piece]) => {
  const i = at % (text.length + 1);
  return text.slice(0, i) + piece + text.slice(i);
});

const root = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(`<div xmlns="${XHTML_NS}">`, `<div xmlns="${XHTML_NS}" title="x">`, `<div xmlns='${XHTML_NS}'>`) },
  fc.constantFrom('<div>', `<div xmlns="${XHTML_NS}" onclick="x">`, `<DIV xmlns="${XHTML_NS}">`),
);

export const narrativeInput: fc.Arbitrary<NarrativeInput> = fc
  .tuple(
    root,
    fc.array(fc.oneof({ weight: 8, arbitrary: wellFormed }, { weight: 2, arbitrary: spliced }, soup), { minLength: 1, maxLength: 4 }),
    fc.oneof({ weight: 8, arbitrary: fc.constant('</div>') }, fc.constantFrom('', '</div>\n', '</DIV>', '</div><img src=x onerror=alert(1)>')),
  )
  .map(([open, content, close]) => ({ div: open + content.join('') + close }));

// ---------------------------------------------------------------- what a browser must never find in an accepted narrative

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

/** Elements that run script or load active content, whatever their attributes. */
const ACTIVE_ELEMENTS = new Set(['script', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'base', 'meta', 'link', 'style', 'animate', 'set', 'handler', 'listener']);
/** Attributes a browser follows or loads as a URL. */
const URL_ATTRIBUTES = new Set(['href', 'src', 'xlink:href', 'action', 'formaction', 'cite', 'longdesc', 'background', 'poster', 'data', 'codebase', 'dynsrc', 'lowsrc', 'usemap']);
const RASTER = /^data:image\/(?:png|gif|jpeg|webp)[;,]/i;

/** The URL as a browser's URL parser reads it (WHATWG URL: C0 controls and spaces trimmed, tabs and newlines removed). */
const browserUrl = (v: string) => v.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');

function urlDanger(value: string): string | undefined {
  const url = browserUrl(value);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1].toLowerCase();
  if (scheme === 'javascript' || scheme === 'vbscript') return `a ${scheme}: URL`;
  if (scheme === 'data' && !RASTER.test(url.replace(/\s/g, ''))) return 'a data: URL that is not a raster image';
  return undefined;
}

/** CSS that runs script (old browsers' expression(), bindings) or loads a URL of those above. */
function styleDanger(css: string): string | undefined {
  if (/expression\s*\(|-moz-binding|behavior\s*:/i.test(css)) return 'runs script';
  for (const m of css.matchAll(/url\(\s*(["']?)([^)]*?)\1\s*\)/gi)) {
    const why = urlDanger(m[2]);
    if (why) return `loads ${why}`;
  }
  return undefined;
}

/** What in this tree would run script or load active content, if anything. */
export function activeContent(root: DefaultTreeAdapterMap['parentNode']): string | undefined {
  const pending: Node[] = [...root.childNodes];
  for (let node = pending.pop(); node; node = pending.pop()) {
    if (!('tagName' in node)) continue;
    const element = node as Element;
    const template = element.nodeName === 'template' && element.namespaceURI === HTML.NS.HTML;
    const children: Node[] = template ? (element as DefaultTreeAdapterMap['template']).content.childNodes : element.childNodes;
    pending.push(...children);
    const name = element.tagName.toLowerCase();
    if (ACTIVE_ELEMENTS.has(name)) return `a <${name}> element`;
    for (const attr of element.attrs) {
      const attrName = (attr.prefix ? `${attr.prefix}:${attr.name}` : attr.name).toLowerCase();
      if (attr.name.toLowerCase().startsWith('on')) return `an ${attr.name} attribute on <${name}>`;
      if (attrName === 'srcdoc') return `a srcdoc attribute on <${name}>`;
      if (URL_ATTRIBUTES.has(attrName) || attr.name === 'href') {
        const why = urlDanger(attr.value);
        if (why) return `${why} in ${attrName} on <${name}>`;
      }
      if (attrName === 'style' && styleDanger(attr.value)) return `a style that ${styleDanger(attr.value)} on <${name}>`;
    }
  }
  return undefined;
}

/** The trees browsers build: as innerHTML of a div, and as the body of a whole page. */
function browserTrees(div: string): [string, DefaultTreeAdapterMap['parentNode']][] {
  const context = defaultTreeAdapter.createElement('div', HTML.NS.HTML, []);
  return [
    ['as innerHTML of a div', parseFragment(context, div, {})],
    ['in the body of a page', parse(`<!DOCTYPE html><html><head></head><body>${div}</body></html>`)],
  ];
}

/** Inputs the checker accepted so far (a property that accepts nothing proves nothing). */
export const narrativeStats = { runs: 0, accepted: 0 };

export function checkNarrative(input: NarrativeInput, settings: PropertySettings): void {
  const checked = run(() => checkXhtml(input.div));
  assertWithinBound(checked, settings.boundMs, 'checkXhtml');
  assertOwnRefusal(checked, () => false, 'checkXhtml');
  narrativeStats.runs++;
  if (!checked.ok || checked.value.length > 0) return;
  narrativeStats.accepted++;
  for (const [how, tree] of browserTrees(input.div)) {
    const danger = activeContent(tree);
    if (danger) throw new PropertyFailure(`an accepted narrative holds, read by a browser ${how}, ${danger}`);
  }
}

export function warmNarrative(): void {
  checkXhtml(`<div xmlns="${XHTML_NS}"><p>x</p></div>`);
}

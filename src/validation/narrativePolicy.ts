/**
 * What a narrative element may be (txt-1 of http://hl7.org/fhir/R4/narrative.html,
 * and docs/decisions/006-content-on-the-api-origin.md): the basic HTML formatting
 * elements and attributes, links only to places that cannot run script, images
 * that load nothing from another site, inline styles that load nothing at all.
 * Applied to every element as the XML reader and as a browser's HTML parser see it
 * (src/validation/xhtml.ts).
 */

export const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** Elements allowed in FHIR narrative (the HL7 validator's list): no script, style, form, frame, object, head, body, base, link, meta. */
const ELEMENTS = new Set([
  'p', 'br', 'div', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'a', 'span', 'b', 'em', 'i', 'strong', 'small', 'big', 'tt',
  'dfn', 'q', 'var', 'abbr', 'acronym', 'cite', 'blockquote', 'hr', 'address', 'bdo', 'kbd', 'sub', 'sup', 'ul', 'ol',
  'li', 'dl', 'dt', 'dd', 'pre', 'table', 'caption', 'colgroup', 'col', 'thead', 'tr', 'tfoot', 'tbody', 'th', 'td',
  'code', 'samp', 'img', 'map', 'area',
]);

/** Attributes allowed on any element (the HL7 validator's list): no event attribute (on*). */
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

/** Attributes holding a URL a reader may follow. */
const LINKS = new Set(['a.href', 'area.href', 'blockquote.cite', 'q.cite', 'img.longdesc']);
/**
 * Schemes a link may use: navigation only, never script (javascript:, vbscript:) nor
 * content made up by the author (data:). urn: is how a Bundle's entries link to each other.
 */
const LINK_SCHEMES = new Set(['http', 'https', 'ftp', 'mailto', 'tel', 'urn']);
/**
 * Inline raster images are inert (an <img> never runs script, even from SVG, but SVG
 * is refused all the same) and the R4 core's own narratives are full of them.
 */
const RASTER_DATA = /^data:image\/(?:png|gif|jpeg|webp)(?:;base64)?,/i;
/** The CSS functions a style may call: colours, and url() of an image as <img> may show it. */
const CSS_FUNCTIONS = new Set(['rgb', 'rgba', 'hsl', 'hsla', 'url']);

export interface ElementProblem {
  code: 'invalid' | 'value';
  message: string;
}

export interface NarrativeElement {
  name: string;
  attrs: readonly (readonly [string, string])[];
}

export function elementProblems(el: NarrativeElement): ElementProblem[] {
  const problems: ElementProblem[] = [];
  if (!ELEMENTS.has(el.name)) problems.push({ code: 'value', message: `Illegal element name in the XHTML ('${el.name}')` });
  for (const [name, value] of el.attrs) {
    const key = `${el.name}.${name}`;
    if (name === 'xmlns') {
      if (value !== XHTML_NS) problems.push({ code: 'invalid', message: `Wrong namespace on the XHTML ('${shown(value)}', should be '${XHTML_NS}')` });
      continue;
    }
    if (name.startsWith('xmlns:')) continue;
    if (!ATTRIBUTES.has(name) && !ELEMENT_ATTRIBUTES.has(key)) {
      problems.push({ code: 'value', message: `Illegal attribute name in the XHTML ('${name}' on '${el.name}')` });
      continue;
    }
    const why = LINKS.has(key) ? linkProblem(value) : key === 'img.src' ? imageProblem(value) : key === 'img.usemap' ? usemapProblem(value) : name === 'style' ? styleProblem(value) : undefined;
    if (why) problems.push({ code: 'value', message: `Unsafe ${name} in the XHTML ('${shown(value)}' on '${el.name}'): ${why}` });
  }
  return problems;
}

/** The URL as a browser's URL parser reads it: tabs and newlines removed, controls and spaces trimmed. */
function browserUrl(value: string): string {
  return value.replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '');
}

const scheme = (url: string) => /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1].toLowerCase();

export function linkProblem(value: string): string | undefined {
  const s = scheme(browserUrl(value));
  if (s === undefined || LINK_SCHEMES.has(s)) return undefined;
  return `a link is relative, a '#' fragment, or uses ${[...LINK_SCHEMES].join(', ')}, not ${s}:`;
}

/**
 * An image is contained ('#id'), relative to where the narrative is shown, or inline
 * raster data: never fetched from another site, which would learn who opens which
 * record, when, and from where.
 */
export function imageProblem(value: string): string | undefined {
  const url = browserUrl(value);
  const s = scheme(url);
  if (s === 'data') return RASTER_DATA.test(url.replace(/\s/g, '')) ? undefined : 'an inline image is PNG, GIF, JPEG or WebP data';
  if (s !== undefined || /^[/\\]{2}/.test(url)) return "an image is a contained ('#id') or relative reference, never loaded from another site";
  return undefined;
}

function usemapProblem(value: string): string | undefined {
  return value.startsWith('#') ? undefined : "an image map is named by a '#' fragment";
}

/**
 * A style loads nothing and runs nothing: no escapes or comments (they could spell
 * any name), no at-rules (@import), and no function but colours and url() of an
 * image <img> could show (not expression(), image-set(), a remote url()).
 */
export function styleProblem(value: string): string | undefined {
  if (/[\\@]|\/\*/.test(value)) return 'a style holds no escape (\\), comment or at-rule (@import)';
  for (let open = value.indexOf('('); open >= 0; open = value.indexOf('(', open + 1)) {
    // the function's name ends at the parenthesis (a bounded look back: names are short)
    const fn = /[A-Za-z0-9_-]*$/.exec(value.slice(Math.max(0, open - 64), open))![0].toLowerCase();
    if (!CSS_FUNCTIONS.has(fn)) return `a style calls no function but ${[...CSS_FUNCTIONS].join('(), ')}(), not ${fn || 'a bare'}()`;
    if (fn === 'url') {
      const close = value.indexOf(')', open);
      const arg = value.slice(open + 1, close < 0 ? undefined : close).trim().replace(/^(["'])(.*)\1$/s, '$2');
      const why = imageProblem(arg);
      if (why) return `in url(): ${why}`;
      if (close < 0) break;
      open = close;
    }
  }
  return undefined;
}

/** Attribute values are quoted back in messages, bounded. */
function shown(value: string): string {
  return value.length > 80 ? `${value.slice(0, 77)}...` : value;
}

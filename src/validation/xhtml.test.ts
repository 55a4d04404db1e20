import { checkXhtml } from './xhtml';
import { imageProblem, linkProblem, styleProblem } from './narrativePolicy';

const NS = 'http://www.w3.org/1999/xhtml';
const div = (inner: string) => `<div xmlns="${NS}">${inner}</div>`;
const messages = (xhtml: string) => checkXhtml(xhtml).map((p) => `${p.message} [${p.keys.join(',')}]`);
const PNG = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

describe('narratives that stay valid', () => {
  it.each([
    ['text', div('Amy Shaw')],
    ['formatting and lists', div('<p><b>Name</b>: <i>Amy</i></p><ul><li>a</li><li>b</li></ul><h2>x</h2><pre>y</pre>')],
    ['a table without tbody (HTML adds it)', div('<table border="0" cellpadding="0"><tr><th>a</th><td colspan="2">b</td></tr></table>')],
    ['XML empty elements HTML reads as start tags', div('<table><tr><td/><td>x</td></tr></table><p/><br/><hr/>')],
    ['links: absolute, relative, fragment, mailto', div('<a href="https://hl7.org/fhir">a</a><a href="Patient/1">b</a><a href="#x">c</a><a href="mailto:a@b.c">d</a><a name="x"> </a>')],
    ['contained, relative and inline raster images', div(`<img src="#pic" alt="a"/><img src="Binary/123"/><img src="help16.png"/><img src="${PNG}"/>`)],
    ['styles with colours and local or inline images', div(`<table><tr><td style="color: rgb(1, 2, 3); background-image: url(tbl_bck1.png)">x</td></tr></table><span style="background: url(${PNG})">y</span>`)],
    ['the XML entities and character references', div('a &lt; b &amp;&amp; c &gt; d &quot;&apos; &#160;&#x2014;')],
    ['a comment', div('<!-- generated --><p>x</p>')],
    ['line breaks inside an attribute', div('<a href="x" title="line one\r\nline two\tend">x</a>')],
    ['whitespace around the root', `\n  ${div('x')}\n`],
    ['an image and no text', div('<img src="#pic"/>')],
  ])('%s', (_name, xhtml) => {
    expect(messages(xhtml)).toEqual([]);
  });
});

describe('narratives refused', () => {
  it.each([
    // markup a browser reads where XML reads a comment: the checker must not be blind to it
    ['an event handler hidden in an abrupt comment', div('<!--><img src="#a" onerror="alert(1)"/>-->'), ["Illegal attribute name in the XHTML ('onerror' on 'img')", 'read differently by a browser: <img> at position']],
    ['a comment that is not one in HTML', div('<!--><b>x</b>-->'), ['read differently by a browser: <b> at position']],
    ['an empty link a browser stretches over what follows', div('<a href="https://x.example/"/><p>all of this</p>'), ['<a/> at position 42 is a link over all that follows']],
    ['many siblings', div('<br/>'.repeat(200_000) + '<script>x</script>'), ["Illegal element name in the XHTML ('script')"]],
    ['a table cell outside a table (HTML drops the tag)', div('<td>x</td>'), ['read differently by a browser: <td> at position 42 is not a tag in HTML']],
    ['the comment trick of the review', div('<!--><img src=x onerror=alert(1)><!-- -->'), ["Error parsing XHTML: Malformed XHTML: '--' inside the comment"]],
    ['script', div('<script>alert(1)</script>'), ["Illegal element name in the XHTML ('script')"]],
    ['iframe', div('<iframe src="https://x"></iframe>'), ["Illegal element name in the XHTML ('iframe')"]],
    ['object', div('<object data="x"></object>'), ["Illegal element name in the XHTML ('object')"]],
    ['embed', div('<embed src="x"/>'), ["Illegal element name in the XHTML ('embed')"]],
    ['form', div('<form action="https://x"><input name="a"/></form>'), ["Illegal element name in the XHTML ('form')", "Illegal element name in the XHTML ('input')"]],
    ['base', div('<base href="https://evil.example/"/>'), ["Illegal element name in the XHTML ('base')"]],
    ['link', div('<link rel="stylesheet" href="https://x/a.css"/>'), ["Illegal element name in the XHTML ('link')"]],
    ['meta', div('<meta http-equiv="refresh" content="0;url=https://x"/>'), ["Illegal element name in the XHTML ('meta')"]],
    ['style element', div('<style>p { background: url(https://x) }</style>'), ["Illegal element name in the XHTML ('style')"]],
    ['svg', div('<svg><script>alert(1)</script></svg>'), ["Illegal element name in the XHTML ('svg')"]],
    ['head and body', div('<head></head><body>x</body>'), ["Illegal element name in the XHTML ('head')", "Illegal element name in the XHTML ('body')"]],
    ['an event attribute', div('<p onclick="x()">a</p>'), ["Illegal attribute name in the XHTML ('onclick' on 'p')"]],
    ['javascript: link', div('<a href="javascript:alert(1)">x</a>'), ["Unsafe href in the XHTML ('javascript:alert(1)' on 'a')"]],
    ['javascript: link, spelt with references', div('<a href=" &#106;ava&#x09;script&#58;alert(1)">x</a>'), ["Unsafe href in the XHTML"]],
    ['JAVASCRIPT: link', div('<a href="JAVASCRIPT:alert(1)">x</a>'), ['Unsafe href in the XHTML']],
    ['data: link', div('<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">x</a>'), ['Unsafe href in the XHTML']],
    ['vbscript: link', div('<a href="vbscript:msgbox(1)">x</a>'), ['Unsafe href in the XHTML']],
    ['javascript: in an image map area', div('<map name="m"><area href="javascript:x()" alt="a"/></map>'), ['Unsafe href in the XHTML']],
    ['a remote image', div('<img src="https://tracker.example/p.png"/>'), ["Unsafe src in the XHTML ('https://tracker.example/p.png' on 'img')"]],
    ['a scheme-relative image', div('<img src="//tracker.example/p.png"/>'), ['Unsafe src in the XHTML']],
    ['a backslash scheme-relative image', div('<img src="/\\tracker.example/p.png"/>'), ['Unsafe src in the XHTML']],
    ['an SVG data image', div('<img src="data:image/svg+xml,&lt;svg/&gt;"/>'), ['Unsafe src in the XHTML']],
    ['a remote url() in a style', div('<p style="background: url(https://tracker.example/p.png)">x</p>'), ['Unsafe style in the XHTML']],
    ['a quoted remote url() in a style', div('<p style="background: url(&quot;//tracker.example/p.png&quot;)">x</p>'), ['Unsafe style in the XHTML']],
    ['expression() in a style', div('<p style="width: expression(alert(1))">x</p>'), ['Unsafe style in the XHTML']],
    ['@import in a style', div('<p style="@import \'https://x/a.css\'">x</p>'), ['Unsafe style in the XHTML']],
    ['a CSS escape spelling url(', div('<p style="background: u\\72l(https://x)">x</p>'), ['Unsafe style in the XHTML']],
    ['image-set() in a style', div('<p style="background-image: image-set(&quot;https://x/a.png&quot; 1x)">x</p>'), ['Unsafe style in the XHTML']],
    ['a namespace other than XHTML inside', div('<a xmlns="http://www.w3.org/2000/svg" href="#x">x</a>'), ["Wrong namespace on the XHTML ('http://www.w3.org/2000/svg'"]],
    ['content after the root element', `${div('x')}<img src="#a" onerror="alert(1)"/>`, ['Error parsing XHTML: Malformed XHTML: content after the end of the root element']],
    ['an entity neither XML nor HTML defines', div('a&nbspx;b'), ['Error parsing XHTML: Malformed XHTML: the entity &nbspx; is not defined']],
    ['an attribute without a value', div('<table><tr><td nowrap>x</td></tr></table>'), ['Error parsing XHTML: Malformed XHTML: the attribute nowrap on <td> has no value']],
    ['an unquoted attribute', div('<img src=x/>'), ['Error parsing XHTML: Malformed XHTML: the value of src on <img> is not quoted']],
    ['< in an attribute value', div('<p title="<img>">x</p>'), ["Error parsing XHTML: Malformed XHTML: '<' in the value of title on <p>"]],
    ['a duplicate attribute', div('<a href="#x" href="javascript:x()">x</a>'), ['Error parsing XHTML: Malformed XHTML: the attribute href appears twice on <a>']],
    ['attributes a browser reads as one', div('<p title="a" TITLE="b">x</p>'), ["Illegal attribute name in the XHTML ('TITLE' on 'p')", 'read differently by a browser']],
    ['a doctype', `<!DOCTYPE div>${div('x')}`, ['Error parsing XHTML: Malformed XHTML: Found a DocType declaration']],
    ['CDATA', div('<![CDATA[x]]>'), ['Error parsing XHTML: CDATA is not allowed']],
    ['a control character', div('a\u0001b'), ['Error parsing XHTML: Malformed XHTML: a control character is not allowed in XML']],
  ])('%s', (_name, xhtml, expected) => {
    const got = messages(xhtml);
    for (const e of expected) expect(got).toEqual(expect.arrayContaining([expect.stringContaining(e)]));
    // every refusal fails txt-1
    expect(got.some((m) => m.endsWith('[txt-1]'))).toBe(true);
  });

  it('reports an HTML named entity as illegal once and reads on, as the HL7 validator does', () => {
    expect(messages(div('a&nbsp;b &eacute;&nbsp;c'))).toEqual([
      "Illegal entity '&nbsp;': XHTML in FHIR has only the XML entities (&lt; &gt; &amp; &quot; &apos;) and character references such as &#160; []",
      "Illegal entity '&eacute;': XHTML in FHIR has only the XML entities (&lt; &gt; &amp; &quot; &apos;) and character references such as &#160; []",
    ]);
    // what follows is still checked
    expect(messages(div('a&nbsp;b<script>x</script>'))).toEqual(expect.arrayContaining([expect.stringContaining("Illegal element name in the XHTML ('script') [txt-1]")]));
    // a known prefix is not a whole entity (HTML would read &not then "it;")
    expect(messages(div('a&notit;b'))).toEqual([expect.stringContaining('the entity &notit; is not defined')]);
  });

  it('reports the root element and namespace as the HL7 validator does', () => {
    expect(messages('<p>x</p>')).toEqual([
      "Wrong name on the XHTML ('p') - must start with div []",
      "Wrong namespace on the XHTML ('null', should be 'http://www.w3.org/1999/xhtml') []",
    ]);
  });

  it('txt-2: some non-whitespace content', () => {
    expect(checkXhtml(div(' \n '))).toEqual([{ code: 'value', message: '', keys: ['txt-2'] }]);
  });
});

describe('URL and style rules, as a browser reads the value', () => {
  it.each([
    ['https://x', undefined],
    ['ftp://x', undefined],
    ['tel:+33100000000', undefined],
    ['urn:uuid:0b0e2e54-8a1b-4d2f-9d2c-3f7b1c1e0a11', undefined],
    ['../Patient/1', undefined],
    ['#a', undefined],
    ['javascript:x', 'not javascript:'],
    ['\u0001 java\nscript:x', 'not javascript:'],
    ['data:text/html,x', 'not data:'],
    ['file:///etc/passwd', 'not file:'],
  ])('link %j', (url, why) => {
    if (why) expect(linkProblem(url)).toContain(why);
    else expect(linkProblem(url)).toBeUndefined();
  });

  it.each([
    ['#a', true],
    ['Binary/1', true],
    [PNG, true],
    ['data:image/gif;base64,R0lGODlhAQABAAAAACw=', true],
    ['data: image/png;base64,AAAA', true],
    ['http://x/a.png', false],
    [' //x/a.png', false],
    ['\\\\x\\a.png', false],
    ['data:image/svg+xml;base64,PHN2Zz4=', false],
    ['data:text/html,x', false],
  ])('image %j', (url, ok) => {
    expect(imageProblem(url) === undefined).toBe(ok);
  });

  it.each([
    ['color: red; width: 10px', true],
    ['color: rgba(0, 0, 0, 0.5); border: 1px hsl(0, 0%, 50%) solid', true],
    ['background-image: url(tbl_bck1.png)', true],
    ['background-image: url( "tbl_bck1.png" )', true],
    ['background-image: url(http://x/a.png)', false],
    ['background-image: URL(//x/a.png)', false],
    ['behavior: url(x.htc)', true], // a local file: nothing fetched from another site; IE only
    ['-moz-binding: url(https://x/b.xml#x)', false],
    ['width: expression(alert(1))', false],
    ['width: calc(1px + 2px)', false],
    ['font-family: "a (b)"', false],
    ['background: u\\72l(https://x)', false],
    ['color: red /* comment */', false],
    ['@import "x"', false],
  ])('style %j', (style, ok) => {
    expect(styleProblem(style) === undefined).toBe(ok);
  });
});

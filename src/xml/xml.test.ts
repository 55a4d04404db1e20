import fs from 'node:fs';
import path from 'node:path';
import { readJson } from '../json/jsonReader';
import { stringifyWithDecimals } from '../json/decimals';
import { readXml } from './readXml';
import { writeXml, XmlWriteError } from './writeXml';
import { R4_DIR } from '../validation/loader';

/** FHIR XML ⇄ JSON (xml.html, json.html): written by hand from the specification's rules, and round trips over real resources. */

const LIMITS = { maxDepth: 100, maxNodes: 100_000, maxArrayLength: 10_000 };
const BIG = { maxDepth: 1000, maxNodes: 100_000_000, maxArrayLength: 10_000_000 };
const read = (xml: string, limits = LIMITS) => readXml(xml, limits);
const F = 'xmlns="http://hl7.org/fhir"';

describe('reading FHIR XML', () => {
  it('reads primitives as JSON types, with their ids and extensions under _name', () => {
    const { value, decimals } = read(`<Observation ${F}>
      <id value="o1"/>
      <status id="s" value="final"/>
      <code><text value="x"/></code>
      <valueInteger value="-42"/>
      <interpretation><coding><userSelected value="true"/></coding></interpretation>
      <referenceRange><low><value value="1.50"/></low><high><value value="1e2"/></high><age><low><value value="3"/></low></age></referenceRange>
    </Observation>`);
    expect(value).toEqual({
      resourceType: 'Observation',
      id: 'o1',
      status: 'final',
      _status: { id: 's' },
      code: { text: 'x' },
      valueInteger: -42,
      interpretation: [{ coding: [{ userSelected: true }] }],
      referenceRange: [{ low: { value: 1.5 }, high: { value: 100 }, age: { low: { value: 3 } } }],
    });
    // 1.50 and 1e2 keep their text, as the JSON reader keeps it (src/json/decimals.ts)
    expect(decimals).toEqual(new Map([['/referenceRange/0/low/value', '1.50'], ['/referenceRange/0/high/value', '1e2']]));
    expect(stringifyWithDecimals(value, decimals)).toContain('"low":{"value":1.50},"high":{"value":1e2}');
  });

  it('reads repeating primitives with ids or extensions as parallel arrays with nulls (json.html#primitive)', () => {
    const { value } = read(`<Patient ${F}><name>
      <given value="Jean"/>
      <given id="g2"><extension url="http://example.org/x"><valueBoolean value="false"/></extension></given>
      <given value="Paul"/>
    </name></Patient>`);
    expect(value).toEqual({
      resourceType: 'Patient',
      name: [{ given: ['Jean', null, 'Paul'], _given: [null, { id: 'g2', extension: [{ url: 'http://example.org/x', valueBoolean: false }] }, null] }],
    });
  });

  it('reads a primitive that has only an extension as _name alone', () => {
    const { value } = read(`<Patient ${F}><birthDate><extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason"><valueCode value="unknown"/></extension></birthDate></Patient>`);
    expect(value).toEqual({ resourceType: 'Patient', _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] } });
  });

  it('reads id and url attributes, nested extensions and modifier extensions', () => {
    const { value } = read(`<Patient ${F}>
      <modifierExtension url="http://example.org/m"><valueString value="m"/></modifierExtension>
      <identifier id="i1"><system value="urn:oid:1.2.250.1.213.1.4.8"/><value value="1"/></identifier>
      <address><extension url="http://example.org/a"><extension url="part"><valueDecimal value="0.10"/></extension></extension><city value="Lyon"/></address>
    </Patient>`);
    expect(value).toEqual({
      resourceType: 'Patient',
      modifierExtension: [{ url: 'http://example.org/m', valueString: 'm' }],
      identifier: [{ id: 'i1', system: 'urn:oid:1.2.250.1.213.1.4.8', value: '1' }],
      address: [{ extension: [{ url: 'http://example.org/a', extension: [{ url: 'part', valueDecimal: 0.1 }] }], city: 'Lyon' }],
    });
    expect(read(`<Patient ${F}><address><extension url="http://example.org/a"><extension url="part"><valueDecimal value="0.10"/></extension></extension></address></Patient>`).decimals).toEqual(
      new Map([['/address/0/extension/0/extension/0/valueDecimal', '0.10']]),
    );
  });

  it('keeps the narrative as sent when the div declares the XHTML namespace, and writes it so otherwise', () => {
    const div = '<div xmlns="http://www.w3.org/1999/xhtml">\n  <p class="x">A &amp; B &lt; C<br/>é&#233;</p><!-- note --><table><tr><td>1</td></tr></table>\n</div>';
    const { value } = read(`<Patient ${F}><text><status value="generated"/>${div}</text></Patient>`);
    expect((value as any).text).toEqual({ status: 'generated', div });
    const prefixed = read(`<Patient ${F} xmlns:h="http://www.w3.org/1999/xhtml"><text><status value="generated"/><h:div><h:p xml:lang="fr">a &amp; b</h:p><h:br/></h:div></text></Patient>`);
    expect((prefixed.value as any).text.div).toBe('<div xmlns="http://www.w3.org/1999/xhtml"><p xml:lang="fr">a &amp; b</p><br/></div>');
  });

  it('reads contained resources, Bundle entries, Parameters resources and a Bundle response outcome', () => {
    const { value, decimals } = read(`<Bundle ${F}><type value="batch-response"/>
      <entry><fullUrl value="urn:uuid:1"/><resource><Observation><contained><Patient><id value="p"/></Patient></contained><status value="final"/><code><text value="c"/></code><valueQuantity><value value="2.0"/></valueQuantity></Observation></resource></entry>
      <entry><resource><Parameters><parameter><name value="r"/><resource><Patient><active value="false"/></Patient></resource></parameter></Parameters></resource></entry>
      <entry><response><status value="400"/><outcome><OperationOutcome><issue><severity value="error"/><code value="invalid"/></issue></OperationOutcome></outcome></response></entry>
    </Bundle>`);
    expect(value).toEqual({
      resourceType: 'Bundle',
      type: 'batch-response',
      entry: [
        { fullUrl: 'urn:uuid:1', resource: { resourceType: 'Observation', contained: [{ resourceType: 'Patient', id: 'p' }], status: 'final', code: { text: 'c' }, valueQuantity: { value: 2 } } },
        { resource: { resourceType: 'Parameters', parameter: [{ name: 'r', resource: { resourceType: 'Patient', active: false } }] } },
        { response: { status: '400', outcome: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] } } },
      ],
    });
    expect(decimals).toEqual(new Map([['/entry/0/resource/valueQuantity/value', '2.0']]));
  });

  it('follows contentReference elements (Questionnaire.item.item) and ignores attributes of other namespaces', () => {
    const { value } = read(
      `<Questionnaire ${F} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir ../../schema/fhir-single.xsd"><status value="draft"/><item><linkId value="1"/><type value="group"/><item><linkId value="1.1"/><type value="string"/></item></item></Questionnaire>`,
    );
    expect(value).toEqual({ resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'string' }] }] });
  });

  it.each([
    ['a DOCTYPE with an entity', `<!DOCTYPE Patient [<!ENTITY a "aaaa">]><Patient ${F}><name><family value="&a;"/></name></Patient>`, /DOCTYPE/],
    ['an external entity', `<!DOCTYPE Patient [<!ENTITY a SYSTEM "file:///etc/passwd">]><Patient ${F}/>`, /DOCTYPE/],
    ['an HTML entity', `<Patient ${F}><name><family value="&eacute;"/></name></Patient>`, /not well-formed/],
    ['an unbound prefix', `<f:Patient ${F}/>`, /not well-formed/],
    ['a processing instruction', `<Patient ${F}><?php x?></Patient>`, /processing instruction/],
    ['CDATA outside the narrative', `<Patient ${F}><![CDATA[x]]></Patient>`, /CDATA/],
    ['an unknown attribute', `<Patient ${F}><active value="true" colour="red"/></Patient>`, /attribute "colour"/],
    ['a value on a complex element', `<Patient ${F}><name value="x"/></Patient>`, /attribute "value"/],
    ['a prototype name', `<Patient ${F}><__proto__ value="x"/></Patient>`, /no element __proto__/],
    ['a wrong namespace inside', `<Patient ${F}><active xmlns="urn:other" value="true"/></Patient>`, /FHIR namespace/],
    ['a non-XHTML element in the narrative', `<Patient ${F}><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><x:y xmlns:x="urn:x"/></div></text></Patient>`, /not XHTML/],
    ['an empty resource wrapper', `<Patient ${F}><contained/></Patient>`, /must hold a resource/],
    ['two resources in one wrapper', `<Patient ${F}><contained><Patient/><Patient/></contained></Patient>`, /more than one resource/],
    ['a primitive with nothing', `<Patient ${F}><active/></Patient>`, /neither a value nor an extension/],
    ['a decimal that is not one', `<Observation ${F}><valueQuantity><value value="1,5"/></valueQuantity></Observation>`, /not a decimal/],
    ['an integer that is not one', `<Observation ${F}><valueInteger value="1.0"/></Observation>`, /not an integer/],
    ['an out-of-range character reference', `<Patient ${F}><name><family value="&#x110000;"/></name></Patient>`, /./],
    ['a surrogate character reference', `<Patient ${F}><name><family value="&#xD800;"/></name></Patient>`, /not an XML character/],
    ['a lone surrogate', `<Patient ${F}><name><family value="a\ud800"/></name></Patient>`, /unpaired surrogate/],
    ['a control character', `<Patient ${F}><name><family value="a\u0001"/></name></Patient>`, /U\+0001 is not allowed/],
    ['a stray ampersand', `<Patient ${F}><name><family value="a & b"/></name></Patient>`, /"&" that does not start a reference/],
    ['a reference without its semicolon', `<Patient ${F}><name><family value="&lt"/></name></Patient>`, /does not start a reference/],
    ['"]]>" in text', `<Patient ${F}><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">a ]]> b</div></text></Patient>`, /"]]>" is not allowed/],
    ['"--" in a comment', `<Patient ${F}><!-- a -- b --></Patient>`, /"--" is not allowed/],
    ['an attribute twice', `<Patient ${F}><active value="true" value="false"/></Patient>`, /appears twice/],
    ['an unquoted attribute', `<Patient ${F}><active value=true/></Patient>`, /must be quoted/],
    ['"<" in an attribute', `<Patient ${F}><name><family value="a<b"/></name></Patient>`, /"<" in the value/],
    ['attributes run together', `<Patient ${F}><name id="a"value="b"/></Patient>`, /expected white space/],
    ['mismatched tags', `<Patient ${F}><name></family></Patient>`, /does not close <name>/],
    ['a declaration not first', ` <?xml version="1.0"?><Patient ${F}/>`, /declaration must come first/],
    ['text outside the root', `<Patient ${F}/>x`, /text after the root/],
    ['no element at all', ``, /no root element/],
    ['unclosed', `<Patient ${F}>`, /not well-formed/],
    ['an entity named after an Object member', `<Patient ${F}><name><family value="&constructor;"/></name></Patient>`, /entity other than/],
    ['an entity named __proto__', `<Patient ${F}><name><family value="&__proto__;"/></name></Patient>`, /entity other than/],
    ['an unclosed DOCTYPE', `<!DOCTYPE Patient [<!ENTITY a "b">`, /not well-formed/],
    ['a NUL character reference', `<Patient ${F}><name><family value="&#0;"/></name></Patient>`, /not an XML character/],
    ['a stray ampersand after a comment that holds one', `<Patient ${F}><!-- a & b --><name><family value="a & b"/></name></Patient>`, /"&" that does not start a reference: write &amp; \(line 1, column 75\)/],
    ['a closing tag of another element, before the element is used', `<Patient ${F}><active></name></Patient>`, /<\/name> does not close <active>/],
    ['a closing tag no element opened', `<Patient ${F}><name></name></Patient></Patient>`, /not well-formed/],
    ['an XML declaration in another encoding', `<?xml version="1.0" encoding="ISO-8859-1"?><Patient ${F}/>`, /ISO-8859-1|iso-8859-1/],
  ])('refuses %s with 400', (what, xml, message) => {
    let error: any;
    try {
      read(xml);
    } catch (e) {
      error = e;
    }
    // FHIR bodies are UTF-8: a declaration of another encoding is 415, as a charset is
    expect(error?.status).toBe(what.includes('encoding') ? 415 : 400);
    expect(error.issues[0].diagnostics).toMatch(message);
  });

  it.each([
    ['nesting', `<Questionnaire ${F}>${'<item>'.repeat(200)}${'</item>'.repeat(200)}</Questionnaire>`, /nested more than 100/],
    ['elements', `<Patient ${F}>${'<name/>'.repeat(100_001)}</Patient>`, /more than 100000 elements/],
    ['repetitions', `<Patient ${F}>${'<name/>'.repeat(10_001)}</Patient>`, /more than 10000 name/],
  ])('refuses too much %s with 413', (_what, xml, message) => {
    let error: any;
    try {
      read(xml, _what === 'elements' ? { ...LIMITS, maxArrayLength: 1_000_000 } : LIMITS);
    } catch (e) {
      error = e;
    }
    expect(error?.status).toBe(413);
    expect(error.issues[0].diagnostics).toMatch(message);
  });

  it('reads attribute values as XML does: white space as spaces, references decoded after', () => {
    const { value } = read(`<Patient ${F}><name><family value="a\tb\r\nc&#10;d&#x9;e &amp;&lt;&gt;&quot;&apos;"/><given value='it"s'/></name></Patient>`);
    expect((value as any).name[0]).toEqual({ family: 'a b c\nd\te &<>"\'', given: ['it"s'] });
  });

  it('accepts what XML allows around the markup: an XML declaration, comments and "&" in them, white space in closing tags, a self-closed narrative', () => {
    const div = '<div xmlns="http://www.w3.org/1999/xhtml"/>';
    const { value } = read(`<?xml version="1.0" encoding="UTF-8"?>\n<!-- a & b --><Patient ${F}><text><status value="generated"/>${div}</text><name ><family value="D&#xE9;"/><!-- <![CDATA[ & --></name ></Patient>\n`);
    expect(value).toEqual({ resourceType: 'Patient', text: { status: 'generated', div }, name: [{ family: 'Dé' }] });
  });

  it('reads the base64 value of a 20 MB document in one attribute', () => {
    const data = Buffer.alloc(20_000_000, 7).toString('base64');
    expect((read(`<Binary ${F}><contentType value="application/pdf"/><data value="${data}"/></Binary>`).value as any).data).toBe(data);
  });
});

describe('writing FHIR XML', () => {
  it('writes elements in the order of the definitions, whatever the order of the JSON members', () => {
    const xml = writeXml({
      birthDate: '1980-01-01',
      name: [{ given: ['A', 'B'], family: 'F', use: 'official' }],
      _birthDate: { id: 'b', extension: [{ valueCode: 'x', url: 'http://example.org/e' }] },
      id: 'p1',
      resourceType: 'Patient',
      meta: { lastUpdated: '2024-01-01T00:00:00Z', versionId: '1' },
      active: true,
    });
    expect(xml).toBe(
      `<Patient ${F}><id value="p1"/><meta><versionId value="1"/><lastUpdated value="2024-01-01T00:00:00Z"/></meta><active value="true"/>` +
        `<name><use value="official"/><family value="F"/><given value="A"/><given value="B"/></name>` +
        `<birthDate id="b" value="1980-01-01"><extension url="http://example.org/e"><valueCode value="x"/></extension></birthDate></Patient>`,
    );
  });

  it('writes repeats with nulls, escapes attribute text, and keeps decimal texts', () => {
    const json = '{"resourceType":"Observation","status":"final","code":{"text":"a<b & \\"c\\"\\nd"},"valueQuantity":{"value":1.50},"component":[{"code":{"text":"x"},"valueQuantity":{"value":-0.0}}]}';
    const { value, decimals } = readJson(json, LIMITS);
    const xml = writeXml(value as any, decimals);
    expect(xml).toContain('<code><text value="a&lt;b &amp; &quot;c&quot;&#10;d"/></code>');
    expect(xml).toContain('<valueQuantity><value value="1.50"/></valueQuantity>');
    expect(xml).toContain('<component><code><text value="x"/></code><valueQuantity><value value="-0.0"/></valueQuantity></component>');
    const given = writeXml({ resourceType: 'Patient', name: [{ given: [null, 'B'], _given: [{ id: 'g' }, null] }] });
    expect(given).toBe(`<Patient ${F}><name><given id="g"/><given value="B"/></name></Patient>`);
  });

  it('writes resources inside their wrapper element, the narrative as it is', () => {
    const div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>x &amp; y</p></div>';
    const xml = writeXml({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: { resourceType: 'Patient', text: { status: 'generated', div }, contained: [{ resourceType: 'Organization', id: 'o' }] } }],
    });
    expect(xml).toBe(
      `<Bundle ${F}><type value="collection"/><entry><resource><Patient><text><status value="generated"/>${div}</text>` +
        `<contained><Organization><id value="o"/></Organization></contained></Patient></resource></entry></Bundle>`,
    );
  });

  it('refuses with 406 a string XML 1.0 cannot carry (U+0001 is a FHIR string character in JSON)', () => {
    let error: any;
    try {
      writeXml({ resourceType: 'Patient', name: [{ family: 'a\u0001b' }] });
    } catch (e) {
      error = e;
    }
    expect(error?.status).toBe(406);
    expect(error.issues[0].diagnostics).toMatch(/U\+0001/);
  });

  it('writes one element a line, indented, for _pretty; the narrative as it is; the same value read back', () => {
    const div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>';
    const resource = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Patient', text: { status: 'generated', div }, birthDate: '1980', _birthDate: { extension: [{ url: 'u', valueBoolean: true }] } } }] };
    const xml = writeXml(resource, undefined, { pretty: true });
    expect(xml).toBe(
      [
        `<Bundle ${F}>`,
        '  <type value="collection"/>',
        '  <entry>',
        '    <resource>',
        '      <Patient>',
        '        <text>',
        '          <status value="generated"/>',
        `          ${div}`,
        '        </text>',
        '        <birthDate value="1980">',
        '          <extension url="u">',
        '            <valueBoolean value="true"/>',
        '          </extension>',
        '        </birthDate>',
        '      </Patient>',
        '    </resource>',
        '  </entry>',
        '</Bundle>',
      ].join('\n'),
    );
    expect(read(xml).value).toEqual(resource);
  });

  it('refuses what R4 does not define instead of dropping it', () => {
    expect(() => writeXml({ resourceType: 'Patient', colour: 'red' })).toThrow(XmlWriteError);
    expect(() => writeXml({ resourceType: 'NotAType' })).toThrow(XmlWriteError);
  });
});

/** JSON → XML → JSON gives the same value, and the same decimal texts. */
function roundTrip(resource: unknown, decimals?: Map<string, string>): void {
  const xml = writeXml(resource as any, decimals);
  const back = readXml(xml, BIG);
  expect(back.value).toEqual(resource);
  // the same decimal digits (XML puts members in the order of the definitions, which JSON need not follow)
  expect(back.decimals ?? new Map()).toEqual(decimals ?? new Map());
}

function jsonFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json')).map((e) => path.join(e.parentPath ?? (e as any).path, e.name));
}

describe('round trips JSON → XML → JSON', () => {
  const root = path.resolve(__dirname, '../..');
  const files = [...jsonFiles(path.join(root, 'fixtures')), ...jsonFiles(path.join(root, 'src/validation/testdata'))];
  const resources: [string, unknown, Map<string, string> | undefined][] = [];
  for (const file of files) {
    const { value, decimals } = readJson(fs.readFileSync(file, 'utf8'), BIG);
    const items = Array.isArray(value) ? value : [value];
    items.forEach((item: any, i) => item?.resourceType && resources.push([`${path.relative(root, file)}${items.length > 1 ? `#${i}` : ''}`, item, items.length > 1 ? undefined : decimals]));
  }

  it('has the project’s fixtures to run on', () => {
    expect(resources.length).toBeGreaterThan(50);
  });

  it.each(resources.map(([name, r, d]) => [name, r, d]))('%s', (_name, resource, decimals) => roundTrip(resource, decimals as Map<string, string> | undefined));

  // The official R4 definitions are real resources of every conformance type, with narratives
  // (1,169 in the ValueSets), extensions on primitives and contained resources.
  it.each(['profiles-types.json', 'search-parameters.json', 'conceptmaps.json', 'valuesets.json'])('the R4 definitions of %s, each entry and the whole Bundle', (file) => {
    const { value, decimals } = readJson(fs.readFileSync(path.join(R4_DIR, file), 'utf8'), BIG);
    roundTrip(value, decimals);
    const entries = (value as any).entry as { resource: unknown }[];
    expect(entries.length).toBeGreaterThan(10);
    for (const e of entries) roundTrip(e.resource);
  });
});

import { FHIR_JSON, http, startTarget, Target } from '../harness';
import { readXml } from '../../src/xml/readXml';

/**
 * FHIR XML over HTTP (http.html#mime-type, xml.html): bodies in application/fhir+xml are
 * read like JSON ones, answers come in XML when _format or Accept asks for it — resources,
 * Bundles and OperationOutcomes alike — and hostile XML is refused before anything runs.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const FHIR_XML = 'application/fhir+xml';
const LIMITS = { maxDepth: 1000, maxNodes: 1_000_000, maxArrayLength: 100_000 };

/** fetch with FHIR XML in and out. */
async function xml(path: string, init: { method?: string; body?: string; accept?: string; contentType?: string } = {}) {
  const headers: Record<string, string> = { accept: init.accept ?? FHIR_XML };
  if (init.body !== undefined) headers['content-type'] = init.contentType ?? FHIR_XML;
  const res = await http(t.base, path, { method: init.method ?? 'GET', headers, body: init.body });
  const isXml = /xml/.test(res.headers.get('content-type') ?? '');
  return { ...res, xml: isXml ? (readXml(res.text, LIMITS).value as any) : undefined };
}

const PATIENT_XML = `<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <!-- a comment is not data -->
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Marie <b>Dupont</b> &amp; famille</p><br/></div>
  </text>
  <extension url="http://example.org/fhir/StructureDefinition/note">
    <valueString value="a &quot;quoted&quot; note&#10;on two lines"/>
  </extension>
  <name id="n1">
    <family value="Dupont"/>
    <given value="Marie"/>
    <given>
      <extension url="http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor">
        <valueCode value="UNK"/>
      </extension>
    </given>
  </name>
  <gender value="female"/>
  <birthDate value="1980-02-03">
    <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">
      <valueDateTime value="1980-02-03T10:15:00+01:00"/>
    </extension>
  </birthDate>
</Patient>`;

const OBSERVATION_XML = (subject: string) => `<Observation xmlns="http://hl7.org/fhir">
  <status value="final"/>
  <code><coding><system value="http://loinc.org"/><code value="29463-7"/></coding></code>
  <subject><reference value="${subject}"/></subject>
  <effectiveDateTime value="2024-01-02"/>
  <valueQuantity><value value="72.50"/><unit value="kg"/><system value="http://unitsofmeasure.org"/><code value="kg"/></valueQuantity>
</Observation>`;

describe('create and read in FHIR XML', () => {
  let id: string;

  it('creates a Patient sent in XML: primitive extensions, element ids, nulls in repeats and the narrative arrive as in JSON', async () => {
    const res = await xml('Patient', { method: 'POST', body: PATIENT_XML });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    expect(res.text.startsWith('<Patient xmlns="http://hl7.org/fhir">')).toBe(true);
    id = res.xml.id;
    const json = await http(t.base, `Patient/${id}`);
    expect(json.status).toBe(200);
    const p = json.body;
    expect(p.name).toEqual([
      { id: 'n1', family: 'Dupont', given: ['Marie', null], _given: [null, { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor', valueCode: 'UNK' }] }] },
    ]);
    expect(json.text).toContain('"_given":[null,{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor","valueCode":"UNK"}]}]');
    expect(p.birthDate).toBe('1980-02-03');
    expect(p._birthDate).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1980-02-03T10:15:00+01:00' }] });
    expect(p.extension[0].valueString).toBe('a "quoted" note\non two lines');
    expect(p.text.div).toBe('<div xmlns="http://www.w3.org/1999/xhtml"><p>Marie <b>Dupont</b> &amp; famille</p><br/></div>');
  });

  it('reads it back in XML, elements in the order of the definitions, equal to the JSON', async () => {
    const res = await xml(`Patient/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+xml; charset=utf-8/);
    const text = res.text;
    const order = ['<id ', '<meta>', '<text>', '<extension ', '<name ', '<gender ', '<birthDate '].map((s) => text.indexOf(s));
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(text).toContain('<name id="n1"><family value="Dupont"/><given value="Marie"/><given><extension url="http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor"><valueCode value="UNK"/></extension></given></name>');
    expect(text).toContain('<valueString value="a &quot;quoted&quot; note&#10;on two lines"/>');
    expect(text).toContain('<div xmlns="http://www.w3.org/1999/xhtml"><p>Marie <b>Dupont</b> &amp; famille</p><br/></div>');
    const json = await http(t.base, `Patient/${id}`);
    expect(res.xml).toEqual(json.body);
  });

  it('answers XML for _format=xml and every XML media type of _format, whatever Accept says', async () => {
    for (const format of ['xml', 'application/fhir+xml', 'application/xml', 'text/xml']) {
      const res = await xml(`Patient/${id}?_format=${encodeURIComponent(format)}`, { accept: FHIR_JSON });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
      expect(res.xml.id).toBe(id);
    }
  });

  it('indents the XML for _pretty=true', async () => {
    const res = await xml(`Patient/${id}?_pretty=true`);
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^<Patient xmlns="http:\/\/hl7.org\/fhir">\n  <id value="/);
    expect(res.xml).toEqual((await xml(`Patient/${id}`)).xml);
  });

  it('chooses by Accept and its q values', async () => {
    const cases: [string, RegExp][] = [
      ['application/fhir+xml', /^application\/fhir\+xml/],
      ['application/xml', /^application\/xml/],
      ['application/fhir+json;q=0.5, application/fhir+xml', /^application\/fhir\+xml/],
      ['application/fhir+xml;q=0.5, application/fhir+json', /^application\/fhir\+json/],
      ['application/fhir+xml;fhirVersion=4.0', /^application\/fhir\+xml/],
    ];
    for (const [accept, type] of cases) {
      const res = await http(t.base, `Patient/${id}`, { headers: { accept } });
      expect([accept, res.status]).toEqual([accept, 200]);
      expect(res.headers.get('content-type')).toMatch(type);
    }
  });

  it('updates from XML, with the version check of If-Match', async () => {
    const body = PATIENT_XML.replace('<Patient xmlns="http://hl7.org/fhir">', `<Patient xmlns="http://hl7.org/fhir"><id value="${id}"/>`).replace('Dupont"/>', 'Durand"/>');
    const res = await http(t.base, `Patient/${id}`, { method: 'PUT', headers: { 'content-type': FHIR_XML, 'if-match': 'W/"1"' }, body });
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
    expect(res.body.name[0].family).toBe('Durand');
  });

  it('keeps a decimal as written (72.50) from XML to JSON to XML', async () => {
    const res = await xml('Observation', { method: 'POST', body: OBSERVATION_XML(`Patient/${id}`) });
    expect(res.status).toBe(201);
    expect(res.text).toContain('<value value="72.50"/>');
    const json = await http(t.base, `Observation/${res.xml.id}`);
    expect(json.text).toContain('"value":72.50');
    const back = await xml(`Observation/${res.xml.id}`);
    expect(back.text).toContain('<valueQuantity><value value="72.50"/><unit value="kg"/>');
  });

  it('answers a search with a Bundle in XML, its entries the resources in XML', async () => {
    const res = await xml(`Observation?subject=Patient/${id}&_include=Observation:subject`);
    expect(res.status).toBe(200);
    expect(res.text.startsWith('<Bundle xmlns="http://hl7.org/fhir">')).toBe(true);
    expect(res.text).toContain('<resource><Observation>');
    expect(res.text).toContain('<resource><Patient>');
    expect(res.text).toContain('<value value="72.50"/>');
    const json = await http(t.base, `Observation?subject=Patient/${id}&_include=Observation:subject`);
    expect(res.xml.entry.map((e: any) => e.resource)).toEqual(json.body.entry.map((e: any) => e.resource));
    expect(res.xml.link.find((l: any) => l.relation === 'self').url).toContain('Observation?');
  });

  it("a page's links keep _format and _pretty: the next page of an XML search, and of history, comes in XML", async () => {
    expect((await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Second' }] } })).status).toBe(201);
    for (const path of [`Patient?_count=1&_format=xml&_pretty=true`, `Patient/${id}/_history?_count=1&_format=xml`]) {
      const first = await xml(path, { accept: FHIR_JSON });
      expect([path, first.status]).toEqual([path, 200]);
      const next = first.xml.link.find((l: any) => l.relation === 'next').url as string;
      expect(next).toContain('_format=xml');
      expect(next).toMatch(/_page=[^&]+$/);
      for (const l of first.xml.link) expect(l.url).toContain('_format=xml');
      expect(next.startsWith(`${t.base}/`)).toBe(true);
      const second = await http(t.base, next.slice(t.base.length + 1), { headers: { accept: FHIR_JSON } });
      expect([path, second.status]).toEqual([path, 200]);
      expect(second.headers.get('content-type')).toContain(FHIR_XML);
      if (path.includes('_pretty')) expect(second.text).toContain('\n  <');
    }
  });

  it('answers history in XML', async () => {
    const res = await xml(`Patient/${id}/_history`);
    expect(res.status).toBe(200);
    expect(res.xml.resourceType).toBe('Bundle');
    expect(res.xml.entry).toHaveLength(2);
  });
});

describe('Bundles, operations and PATCH in XML', () => {
  it('runs a transaction sent in XML and answers it in XML', async () => {
    const body = `<Bundle xmlns="http://hl7.org/fhir">
      <type value="transaction"/>
      <entry>
        <fullUrl value="urn:uuid:0c3b8b3e-6d2f-4a8c-9b8e-1b2f0c0d1e2f"/>
        <resource><Patient><name><family value="Transaction"/></name></Patient></resource>
        <request><method value="POST"/><url value="Patient"/></request>
      </entry>
      <entry>
        <resource>
          <Observation>
            <contained><Practitioner><id value="p1"/><name><family value="Contenu"/></name></Practitioner></contained>
            <status value="final"/>
            <code><text value="weight"/></code>
            <subject><reference value="urn:uuid:0c3b8b3e-6d2f-4a8c-9b8e-1b2f0c0d1e2f"/></subject>
            <performer><reference value="#p1"/></performer>
            <valueQuantity><value value="1.50"/></valueQuantity>
          </Observation>
        </resource>
        <request><method value="POST"/><url value="Observation"/></request>
      </entry>
    </Bundle>`;
    const res = await xml('', { method: 'POST', body });
    expect(res.status).toBe(200);
    expect(res.xml.type).toBe('transaction-response');
    expect(res.xml.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '201 Created']);
    const observation = await http(t.base, res.xml.entry[1].response.location.replace(/\/_history\/.*$/, ''));
    expect(observation.body.contained).toEqual([{ resourceType: 'Practitioner', id: 'p1', name: [{ family: 'Contenu' }] }]);
    expect(observation.body.subject.reference).toMatch(/^Patient\//);
    expect(observation.text).toContain('"value":1.50');
  });

  it('validates a resource sent in XML ($validate), with a Parameters resource too, and answers in XML', async () => {
    const raw = await xml('Patient/$validate', { method: 'POST', body: '<Patient xmlns="http://hl7.org/fhir"><gender value="nope"/></Patient>' });
    expect(raw.status).toBe(200);
    expect(raw.xml.resourceType).toBe('OperationOutcome');
    expect(raw.xml.issue.some((i: any) => i.severity === 'error')).toBe(true);
    const wrapped = await xml('Patient/$validate', {
      method: 'POST',
      body: '<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="resource"/><resource><Patient><gender value="female"/></Patient></resource></parameter></Parameters>',
    });
    expect(wrapped.status).toBe(200);
    expect(wrapped.xml.issue.every((i: any) => i.severity !== 'error')).toBe(true);
  });

  it('applies a FHIRPath Patch sent in XML', async () => {
    const created = await xml('Patient', { method: 'POST', body: '<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>' });
    const patch = `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="operation"/>
      <part><name value="type"/><valueCode value="replace"/></part>
      <part><name value="path"/><valueString value="Patient.active"/></part>
      <part><name value="value"/><valueBoolean value="false"/></part></parameter></Parameters>`;
    const res = await xml(`Patient/${created.xml.id}`, { method: 'PATCH', body: patch });
    expect(res.status).toBe(200);
    expect(res.xml.active).toBe(false);
    const notParameters = await xml(`Patient/${created.xml.id}`, { method: 'PATCH', body: '<Patient xmlns="http://hl7.org/fhir"/>' });
    expect(notParameters.status).toBe(400);
  });

  it('loads a ValueSet posted in XML as a JSON one, and expands it in XML', async () => {
    const url = 'http://example.org/fhir/ValueSet/xml-colours';
    const body = `<ValueSet xmlns="http://hl7.org/fhir"><url value="${url}"/><name value="XmlColours"/><status value="active"/>
      <compose><include><system value="http://example.org/fhir/CodeSystem/colours"/><concept><code value="red"/><display value="Rouge"/></concept><concept><code value="blue"/></concept></include></compose></ValueSet>`;
    const created = await xml('ValueSet', { method: 'POST', body });
    expect(created.status).toBe(201);
    const expanded = await xml(`ValueSet/$expand?url=${encodeURIComponent(url)}`);
    expect(expanded.status).toBe(200);
    expect(expanded.xml.expansion.contains.map((c: any) => c.code)).toEqual(['red', 'blue']);
  });

  it('answers $everything, $meta, a count and Prefer: return=OperationOutcome in XML, as in JSON', async () => {
    const patient = await xml('Patient', { method: 'POST', body: PATIENT_XML });
    const id = patient.xml.id;
    await xml('Observation', { method: 'POST', body: OBSERVATION_XML(`Patient/${id}`) });
    for (const path of [`Patient/${id}/$everything`, `Patient/${id}/$meta`, 'Patient?_summary=count', `Patient/${id}?_elements=name`]) {
      const inXml = await xml(path);
      const inJson = await http(t.base, path);
      expect([path, inXml.status]).toEqual([path, 200]);
      const strip = (b: any) => ({ ...b, id: undefined, meta: b.resourceType === 'Bundle' ? undefined : b.meta, link: undefined });
      expect(strip(inXml.xml)).toEqual(strip(inJson.body));
    }
    const outcome = await http(t.base, 'Patient', { method: 'POST', headers: { 'content-type': FHIR_XML, accept: FHIR_XML, prefer: 'return=OperationOutcome' }, body: PATIENT_XML });
    expect(outcome.status).toBe(201);
    expect(outcome.text).toMatch(/^<OperationOutcome xmlns="http:\/\/hl7.org\/fhir"><issue><severity value="information"\/>/);
  });

  it('lists both formats in the CapabilityStatement, which is served in XML too', async () => {
    const res = await xml('metadata');
    expect(res.status).toBe(200);
    expect(res.xml.format).toEqual(expect.arrayContaining(['application/fhir+json', 'json', 'application/fhir+xml', 'xml']));
    expect(res.xml.patchFormat).toEqual(expect.arrayContaining(['application/json-patch+json', 'application/fhir+json', 'application/fhir+xml']));
  });
});

describe('errors in XML', () => {
  it('answers a 404 with an XML OperationOutcome when XML was asked for', async () => {
    const res = await xml('Patient/does-not-exist');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    expect(res.text).toMatch(/^<OperationOutcome xmlns="http:\/\/hl7.org\/fhir"><issue><severity value="error"\/><code value="not-found"\/>/);
  });

  it('answers an invalid resource with 422 and its issues in XML', async () => {
    const res = await xml('Patient', { method: 'POST', body: '<Patient xmlns="http://hl7.org/fhir"><gender value="nope"/></Patient>' });
    expect(res.status).toBe(422);
    expect(res.xml.resourceType).toBe('OperationOutcome');
  });

  it.each([
    ['malformed XML', '<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>', /not well-formed/],
    ['a root outside the FHIR namespace', '<Patient><active value="true"/></Patient>', /FHIR namespace/],
    ['an element FHIR does not define', '<Patient xmlns="http://hl7.org/fhir"><colour value="red"/></Patient>', /no element colour/],
    ['text where a value attribute belongs', '<Patient xmlns="http://hl7.org/fhir"><active>true</active></Patient>', /text is not allowed/],
    ['a boolean that is not one', '<Patient xmlns="http://hl7.org/fhir"><active value="yes"/></Patient>', /true or false/],
    ['a repeated single element', '<Patient xmlns="http://hl7.org/fhir"><active value="true"/><active value="false"/></Patient>', /more than once/],
    ['an unknown resource type', '<Patientx xmlns="http://hl7.org/fhir"/>', /not an R4 resource type/],
    ['two roots', '<Patient xmlns="http://hl7.org/fhir"/><Patient xmlns="http://hl7.org/fhir"/>', /./],
  ])('refuses %s with 400 and an OperationOutcome, nothing written', async (_name, body, message) => {
    const before = (await http(t.base, 'Patient?_summary=count')).body.total;
    for (const accept of [FHIR_XML, FHIR_JSON]) {
      const res = await xml('Patient', { method: 'POST', body, accept });
      expect(res.status).toBe(400);
      const outcome = accept === FHIR_XML ? res.xml : res.body;
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue[0].diagnostics).toMatch(message);
    }
    expect((await http(t.base, 'Patient?_summary=count')).body.total).toBe(before);
  });

  it('still answers 406 for a format that is neither JSON nor XML, and 415 for such a body', async () => {
    expect((await http(t.base, 'Patient?_format=html')).status).toBe(406);
    expect((await http(t.base, 'Patient', { headers: { accept: 'text/html' } })).status).toBe(406);
    expect((await http(t.base, 'Patient', { headers: { accept: 'application/fhir+xml;fhirVersion=3.0' } })).status).toBe(406);
    expect((await xml('Patient', { method: 'POST', body: 'x', contentType: 'text/plain' })).status).toBe(415);
    expect((await xml('Patient', { method: 'POST', body: '<Patient xmlns="http://hl7.org/fhir"/>', contentType: 'application/fhir+xml;fhirVersion=3.0' })).status).toBe(415);
  });

  it('refuses a string holding a character XML cannot carry (U+0001), in JSON too: no FHIR string holds one (datatypes.html#string)', async () => {
    const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'a\u0001b' }] } });
    expect(created.status).toBe(400);
    expect(JSON.stringify(created.body.issue)).toContain('U+0001');
    expect(created.body.issue[0].expression).toEqual(['Patient.name[0].family']);
  });

  it('refuses an XML declaration of another encoding with 415', async () => {
    const res = await xml('Patient', { method: 'POST', body: '<?xml version="1.0" encoding="ISO-8859-1"?><Patient xmlns="http://hl7.org/fhir"/>' });
    expect(res.status).toBe(415);
  });
});

describe('hostile XML', () => {
  const count = async () => (await http(t.base, 'Patient?_summary=count')).body.total as number;

  it.each([
    ['entity expansion (billion laughs)', `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&lol2;"/></name></Patient>`],
    ['an external entity (XXE)', `<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&xxe;"/></name></Patient>`],
    ['an external DTD', `<!DOCTYPE Patient SYSTEM "http://127.0.0.1:9/evil.dtd"><Patient xmlns="http://hl7.org/fhir"/>`],
    ['an undeclared entity', `<Patient xmlns="http://hl7.org/fhir"><name><family value="&nbsp;"/></name></Patient>`],
    ['a NUL character reference', `<Patient xmlns="http://hl7.org/fhir"><name><family value="a&#0;b"/></name></Patient>`],
  ])('refuses %s with 400, nothing written', async (_name, body) => {
    const before = await count();
    const res = await xml('Patient', { method: 'POST', body });
    expect(res.status).toBe(400);
    expect(res.xml.resourceType).toBe('OperationOutcome');
    expect(await count()).toBe(before);
  });

  it('refuses nesting past JSON_MAX_DEPTH with 413, and answers the next request at once', async () => {
    const depth = 5000;
    const body = `<Questionnaire xmlns="http://hl7.org/fhir"><status value="draft"/>${'<item>'.repeat(depth)}${'</item>'.repeat(depth)}</Questionnaire>`;
    const res = await xml('Questionnaire', { method: 'POST', body });
    expect(res.status).toBe(413);
    expect(res.xml.resourceType).toBe('OperationOutcome');
    expect((await http(t.base, 'metadata')).status).toBe(200);
  });

  it('refuses more elements than JSON_MAX_NODES with 413', async () => {
    const body = `<Patient xmlns="http://hl7.org/fhir">${'<name><given value="a"/></name>'.repeat(60_000)}</Patient>`;
    const res = await xml('Patient', { method: 'POST', body });
    expect(res.status).toBe(413);
  });
});

describe('Binary', () => {
  it('keeps raw XML content raw, and gives the Binary resource in FHIR XML when asked for', async () => {
    const cda = '<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>x</title></ClinicalDocument>';
    for (const contentType of ['application/xml', 'text/xml']) {
      const created = await http(t.base, 'Binary', { method: 'POST', headers: { 'content-type': contentType, accept: '*/*' }, body: cda });
      expect(created.status).toBe(201);
      const location = created.headers.get('location')!.replace(/^.*\/fhir\//, '').replace(/\/_history\/.*$/, '');
      const raw = await http(t.base, location, { headers: { accept: '*/*' } });
      expect(raw.headers.get('content-type')).toMatch(new RegExp(`^${contentType}`));
      expect(raw.text).toBe(cda);
      // a browser names application/xml below text/html: it still gets the content
      const browser = await http(t.base, location, { headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } });
      expect(browser.text).toBe(cda);
      const resource = await xml(location);
      expect(resource.status).toBe(200);
      expect(resource.xml.resourceType).toBe('Binary');
      expect(Buffer.from(resource.xml.data, 'base64').toString()).toBe(cda);
    }
  });

  it('reads a Binary resource sent in FHIR XML as the resource', async () => {
    const data = Buffer.from('hello').toString('base64');
    const res = await xml('Binary', { method: 'POST', body: `<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><data value="${data}"/></Binary>` });
    expect(res.status).toBe(201);
    expect(res.xml.contentType).toBe('text/plain');
    expect(res.xml.data).toBe(data);
  });
});

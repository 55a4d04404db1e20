import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { freshNir, insPatient, INS_NIR } from './identity';

/**
 * A black-box conformance suite of the IHE MHD flows (ITI-65, 66, 67, 68, 105) with the
 * French PDSm shapes: it talks to a server only over HTTP, so it runs against any base URL.
 * Each check is a line: `ok  - name` or `FAIL - name (why)`. Every run uses fresh patients
 * and identifiers, so it can run again and again against the same server.
 */
export interface SuiteOptions {
  base: string;
  token?: string;
  /** Our own provide Bundles (fixtures/mhd, fixtures/pdsm). */
  fixtureDirs: string[];
  /** The official IHE and ANS examples, read in place; absent folder: said, not failed. */
  examplesDir?: string;
  log?: (line: string) => void;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  why?: string;
}

type Json = Record<string, any>;
const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
const IS_ARCHIVED = 'https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-ext-is-archived';
const DESIGNATION_TYPE = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType';
const A07 = 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument';
const PROVIDE_PROFILE = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle';
const SOURCE_ID = 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId';
/** The author of the suite's submissions: a professional with a national identifier (idNatPS: 8 + RPPS). */
const AUTHOR = { resourceType: 'Practitioner', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: '810001234567' }], name: [{ family: 'CONFORMITE', given: ['JEANNE'] }] };
/** The INS the official examples carry, whose key is wrong. */
const EXAMPLE_INS = '123456789012345';
/** The type and class every DocumentReference of the French record carries. */
const DOCUMENT_CODES = {
  type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] },
  category: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument', code: '10' }] }],
};

const sha1 = (bytes: Buffer) => crypto.createHash('sha1').update(bytes).digest('base64');
/** A UUID-based OID (ISO/IEC 9834-8), unique without any registration. */
/** The context PDSm asks of a document: its period, facility type, practice setting and the source patient (a contained `#patient-source`). */
export const documentContext = (now: string) => ({
  period: { start: now },
  facilityType: { coding: [{ system: 'http://snomed.info/sct', code: '22232009' }] },
  practiceSetting: { coding: [{ system: 'http://snomed.info/sct', code: '394802001' }] },
  sourcePatientInfo: { reference: '#patient-source' },
});
const freshOid = () => `urn:oid:2.25.${BigInt(`0x${crypto.randomUUID().replace(/-/g, '')}`).toString()}`;
const freshValue = (old: string) => (old.startsWith('urn:uuid:') ? `urn:uuid:${crypto.randomUUID()}` : freshOid());
const isSubmissionSet = (r: Json | undefined) =>
  r?.resourceType === 'List' &&
  ((r.code?.coding ?? []).some((c: Json) => c.system === MHD_LIST_TYPES && c.code === 'submissionset') ||
    (r.meta?.profile ?? []).some((p: string) => /SubmissionSet/i.test(p)));
/** A provide Bundle: a transaction carrying a SubmissionSet List. */
export const isProvideBundle = (b: Json | undefined) => b?.resourceType === 'Bundle' && b.type === 'transaction' && (b.entry ?? []).some((e: Json) => isSubmissionSet(e.resource));

/** `Type/id` of a transaction-response location, relative or absolute, with or without its version. */
function located(location: unknown): { type: string; id: string } | undefined {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?\/?$/.exec(String(location ?? ''));
  return m ? { type: m[1], id: m[2] } : undefined;
}

class Failure extends Error {}
function expect(condition: unknown, why: string): asserts condition {
  if (!condition) throw new Failure(why);
}

export async function runMhdSuite(options: SuiteOptions): Promise<{ passed: number; failed: number; results: CheckResult[] }> {
  const base = options.base.replace(/\/+$/, '');
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const results: CheckResult[] = [];

  async function check(name: string, fn: () => Promise<void>): Promise<boolean> {
    try {
      await fn();
      results.push({ name, ok: true });
      log(`ok  - ${name}`);
      return true;
    } catch (e) {
      const why = e instanceof Failure ? e.message : `error: ${(e as Error).message}`;
      results.push({ name, ok: false, why });
      log(`FAIL - ${name} (${why})`);
      return false;
    }
  }

  async function request(method: string, url: string, body?: unknown, accept = 'application/fhir+json', contentType = 'application/fhir+json') {
    const headers: Record<string, string> = { accept };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (body !== undefined) headers['content-type'] = contentType;
    const res = await fetch(/^https?:/.test(url) ? url : `${base}/${url.replace(/^\//, '')}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    let json: any;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, bytes, body: json };
  }
  const describe = (r: { status: number; body: any }) =>
    `HTTP ${r.status}${r.body?.resourceType === 'OperationOutcome' ? `: ${(r.body.issue ?? []).map((i: Json) => i.diagnostics ?? i.details?.text ?? i.code).join('; ')}` : ''}`;
  const ids = async (query: string) => {
    const res = await request('GET', query);
    expect(res.status === 200 && res.body?.resourceType === 'Bundle', `search ${query}: ${describe(res)}`);
    return (res.body.entry ?? []).filter((e: Json) => e.search?.mode !== 'include' && e.search?.mode !== 'outcome').map((e: Json) => e.resource?.id as string);
  };
  const countByIdentifier = async (type: string, system: string, value: string) =>
    (await ids(`${type}?identifier=${encodeURIComponent(`${system}|${value}`)}`)).length;

  /**
   * A Patient with a fresh valid INS (a national record: its submissions meet PDSm), created
   * before anything names it; or, `national` false, a Patient without INS, for the
   * international examples, which are no French submissions.
   */
  async function createPatient(family: string, national = true): Promise<{ id: string; ins: string }> {
    const ins = freshNir();
    const res = await request('POST', 'Patient', national ? insPatient(family, ins) : { resourceType: 'Patient', name: [{ family }] });
    expect(res.status === 201 && res.body?.id, `creating the Patient: ${describe(res)}`);
    return { id: res.body.id, ins };
  }

  /** An ITI-105 publication: the DocumentReference with its content inline. */
  const publication = (patientId: string, bytes: Buffer, extra: Json = {}): Json => ({
    resourceType: 'DocumentReference',
    masterIdentifier: { system: 'urn:ietf:rfc:3986', value: freshOid() },
    status: 'current',
    ...DOCUMENT_CODES,
    subject: { reference: `Patient/${patientId}` },
    date: new Date().toISOString(),
    content: [{ attachment: { contentType: 'text/plain', data: bytes.toString('base64') } }],
    ...extra,
  });

  /**
   * An ITI-65 Bundle built here, with the PDSm metadata a submission to a French record
   * carries: SubmissionSet (designationType, sourceId, its author contained), DocumentReference
   * (uniqueId, author with a national identifier, confidentiality, title, language, creation,
   * format, context with period, facility, practice setting and source patient), Binary;
   * fresh identifiers.
   */
  function provideBundle(patientId: string, bytes: Buffer, attachment: Json = {}): Json {
    const [list, doc, binary] = [1, 2, 3].map(() => `urn:uuid:${crypto.randomUUID()}`);
    const now = new Date().toISOString();
    return {
      resourceType: 'Bundle',
      meta: { profile: [PROVIDE_PROFILE] },
      type: 'transaction',
      entry: [
        {
          fullUrl: list,
          resource: {
            resourceType: 'List',
            contained: [{ ...AUTHOR, id: 'auteur' }],
            extension: [
              { url: DESIGNATION_TYPE, valueCodeableConcept: DOCUMENT_CODES.type },
              { url: SOURCE_ID, valueIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.250.1.999.1' } },
            ],
            identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: `urn:uuid:${crypto.randomUUID()}` }],
            status: 'current',
            mode: 'working',
            code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] },
            subject: { reference: `Patient/${patientId}` },
            date: now,
            source: { reference: '#auteur' },
            entry: [{ item: { reference: doc } }],
          },
          request: { method: 'POST', url: 'List' },
        },
        {
          fullUrl: doc,
          resource: {
            resourceType: 'DocumentReference',
            contained: [{ ...AUTHOR, id: 'auteur' }, { resourceType: 'Patient', id: 'patient-source', name: [{ family: 'CONFORMITE' }] }],
            masterIdentifier: { system: 'urn:ietf:rfc:3986', value: freshOid() },
            status: 'current',
            ...DOCUMENT_CODES,
            subject: { reference: `Patient/${patientId}` },
            date: now,
            author: [{ reference: '#auteur' }],
            securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }] }],
            content: [
              {
                attachment: { contentType: 'text/plain', language: 'fr-FR', url: binary, title: 'Compte rendu', creation: now, ...attachment },
                format: { system: 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode', code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient' },
              },
            ],
            context: documentContext(now),
          },
          request: { method: 'POST', url: 'DocumentReference' },
        },
        { fullUrl: binary, resource: { resourceType: 'Binary', contentType: 'text/plain', data: bytes.toString('base64') }, request: { method: 'POST', url: 'Binary' } },
      ],
    };
  }

  /** ITI-68: the raw bytes behind an attachment url, asked for in their own type. */
  async function retrieve(url: string, contentType: string) {
    return request('GET', url, undefined, contentType);
  }

  /**
   * Posts a provide Bundle and checks what every submission must give: a transaction-response
   * with one entry per request entry in the same order (201 for each POST), each document's
   * Binary stored with the size and SHA-1 hash of the bytes sent and retrievable raw, and each
   * replaced document superseded. Returns the stored ids by entry, or undefined.
   */
  async function submit(label: string, bundle: Json): Promise<Array<{ type: string; id: string } | undefined> | undefined> {
    let res: Awaited<ReturnType<typeof request>> | undefined;
    const okResponse = await check(`ITI-65 ${label}: accepted as a transaction-response`, async () => {
      res = await request('POST', '', bundle);
      expect(res.status === 200, describe(res));
      expect(res.body?.resourceType === 'Bundle' && res.body.type === 'transaction-response', `answered a ${res.body?.resourceType} of type ${res.body?.type}`);
    });
    if (!okResponse || !res) return undefined;
    const answer = res.body;
    const stored = (answer.entry ?? []).map((e: Json) => located(e.response?.location));
    await check(`ITI-65 ${label}: one response entry per request entry, same order, 201 for each POST`, async () => {
      expect(answer.entry?.length === bundle.entry.length, `${answer.entry?.length} response entries for ${bundle.entry.length} request entries`);
      bundle.entry.forEach((e: Json, i: number) => {
        const status = String(answer.entry[i].response?.status ?? '');
        const method = e.request?.method;
        expect(method === 'POST' ? /^201/.test(status) : /^20[01]/.test(status), `entry ${i} (${method} ${e.request?.url}) answered ${status}`);
        const type = e.request.url.split(/[/?]/)[0];
        expect(stored[i]?.type === type, `entry ${i} (${method} ${e.request.url}) located at ${answer.entry[i].response?.location}`);
      });
    });
    const binaries = new Map<string, { index: number; bytes: Buffer; contentType: string }>();
    bundle.entry.forEach((e: Json, i: number) => {
      if (e.resource?.resourceType === 'Binary' && e.fullUrl) binaries.set(e.fullUrl, { index: i, bytes: Buffer.from(e.resource.data ?? '', 'base64'), contentType: e.resource.contentType });
    });
    for (const [i, e] of bundle.entry.entries()) {
      if (e.resource?.resourceType !== 'DocumentReference' || !stored[i]) continue;
      for (const [c, content] of (e.resource.content ?? []).entries()) {
        const binary = binaries.get(content.attachment?.url);
        if (!binary) continue;
        await check(`ITI-68 ${label}: document ${i} content ${c}: the Binary's raw bytes are those sent, size and SHA-1 hash are theirs`, async () => {
          const doc = await request('GET', `DocumentReference/${stored[i]!.id}`);
          expect(doc.status === 200, `reading the DocumentReference: ${describe(doc)}`);
          const attachment = doc.body.content?.[c]?.attachment ?? {};
          const binaryId = stored[binary.index]?.id;
          expect(located(attachment.url)?.type === 'Binary' && located(attachment.url)?.id === binaryId, `attachment.url ${attachment.url}, the Binary stored is ${binaryId}`);
          expect(attachment.size === binary.bytes.length, `attachment.size ${attachment.size}, ${binary.bytes.length} bytes sent`);
          expect(attachment.hash === sha1(binary.bytes), `attachment.hash ${attachment.hash}, SHA-1 of the bytes sent ${sha1(binary.bytes)}`);
          const raw = await retrieve(attachment.url, binary.contentType);
          expect(raw.status === 200, `retrieving ${attachment.url} as ${binary.contentType}: ${describe(raw)}`);
          expect((raw.headers.get('content-type') ?? '').startsWith(binary.contentType), `Content-Type ${raw.headers.get('content-type')}, ${binary.contentType} sent`);
          expect(raw.bytes.equals(binary.bytes), `${raw.bytes.length} bytes retrieved, ${binary.bytes.length} sent, or different ones`);
        });
      }
      for (const relation of e.resource.relatesTo ?? []) {
        if (relation.code !== 'replaces') continue;
        await check(`ITI-65 ${label}: the replaced ${relation.target?.reference} is superseded`, async () => {
          const old = await request('GET', relation.target.reference);
          expect(old.status === 200, `reading it: ${describe(old)}`);
          expect(old.body.status === 'superseded', `its status is ${old.body.status}`);
        });
      }
    }
    return stored;
  }

  /**
   * A provide Bundle read from a file made submittable on this server: fresh identifiers
   * (SubmissionSet, documents, FHIR documents), the example INS replaced by a valid one of a
   * Patient created first, relative Patient references and absolute subjects pointing at a
   * Patient created first, replaced documents created first.
   */
  async function prepare(text: string, family: string): Promise<Json> {
    const parsed = JSON.parse(text);
    const fresh = new Map<string, string>();
    const rename = (identifier: Json | undefined) => {
      if (typeof identifier?.value === 'string' && !fresh.has(identifier.value)) fresh.set(identifier.value, freshValue(identifier.value));
    };
    for (const e of parsed.entry ?? []) {
      const r = e.resource ?? {};
      if (r.resourceType === 'List' || r.resourceType === 'DocumentReference') [].concat(r.identifier ?? []).forEach(rename);
      if (r.resourceType === 'DocumentReference') rename(r.masterIdentifier);
      if (r.resourceType === 'Bundle') rename(r.identifier);
    }
    for (const [old, value] of fresh) text = text.replaceAll(JSON.stringify(old), JSON.stringify(value));
    // a French example names its patient by the example INS; an international one names a Patient of no national record
    const patient = await createPatient(family, text.includes(EXAMPLE_INS));
    text = text.replaceAll(EXAMPLE_INS, patient.ins);
    for (const id of new Set([...text.matchAll(/"Patient\/([A-Za-z0-9\-.]{1,64})"/g)].map((m) => m[1]))) text = text.replaceAll(`"Patient/${id}"`, `"Patient/${patient.id}"`);
    for (const id of new Set([...text.matchAll(/"DocumentReference\/([A-Za-z0-9\-.]{1,64})"/g)].map((m) => m[1]))) {
      const res = await request('POST', 'DocumentReference', publication(patient.id, Buffer.from(`document remplacé ${id}`)));
      expect(res.status === 201, `creating the document ${id} the Bundle names: ${describe(res)}`);
      text = text.replaceAll(`DocumentReference/${id}"`, `DocumentReference/${res.body.id}"`);
    }
    const bundle = JSON.parse(text);
    for (const e of bundle.entry ?? []) {
      const r = e.resource ?? {};
      if ((r.resourceType === 'List' || r.resourceType === 'DocumentReference') && /^https?:/.test(r.subject?.reference ?? '')) r.subject = { reference: `Patient/${patient.id}` };
    }
    return bundle;
  }

  async function runFile(label: string, file: string) {
    let bundle: Json | undefined;
    const ready = await check(`${label}: its Patient and the documents it replaces created, identifiers made fresh`, async () => {
      bundle = await prepare(fs.readFileSync(file, 'utf8'), 'CONFORMITE');
    });
    if (ready && bundle) await submit(label, bundle);
  }

  // --- our own Bundle, built here: the flows one after the other
  const run = crypto.randomBytes(4).toString('hex');
  let patient: { id: string; ins: string } | undefined;
  await check('a Patient with a valid INS is created (201)', async () => {
    patient = await createPatient('CONFORMITE');
  });
  if (patient) {
    const p = patient;
    const bytes = Buffer.from(`Compte rendu de consultation ${run}\n`);
    const bundle = provideBundle(p.id, bytes);
    const stored = await submit('provide Bundle (SubmissionSet, DocumentReference, Binary)', bundle);
    const docId = stored?.[1]?.id;
    const listId = stored?.[0]?.id;
    await check('ITI-67 finds the DocumentReference by patient', async () => {
      expect(docId, 'no document was stored');
      const found = await ids(`DocumentReference?patient=${encodeURIComponent(`Patient/${p.id}`)}`);
      expect(found.includes(docId), `found ${JSON.stringify(found)}`);
    });
    await check('ITI-67 finds the DocumentReference by patient.identifier (INS)', async () => {
      expect(docId, 'no document was stored');
      const found = await ids(`DocumentReference?patient.identifier=${encodeURIComponent(`${INS_NIR}|${p.ins}`)}`);
      expect(found.includes(docId), `found ${JSON.stringify(found)}`);
    });
    await check('ITI-66 finds the SubmissionSet List by patient', async () => {
      expect(listId, 'no List was stored');
      const found = await ids(`List?patient=${encodeURIComponent(`Patient/${p.id}`)}&code=${encodeURIComponent(`${MHD_LIST_TYPES}|submissionset`)}`);
      expect(found.includes(listId), `found ${JSON.stringify(found)}`);
    });

    /** The Bundle with a Folder gathering its document, named by its SubmissionSet. */
    const withFolder = (bundle: Json, folder: Json = {}): Json => {
      const fullUrl = `urn:uuid:${crypto.randomUUID()}`;
      bundle.entry[0].resource.entry.push({ item: { reference: fullUrl } });
      bundle.entry.push({
        fullUrl,
        resource: {
          resourceType: 'List',
          identifier: [{ system: 'urn:ietf:rfc:3986', value: freshOid() }],
          status: 'current',
          mode: 'working',
          title: `dossier ${run}`,
          code: { coding: [{ system: MHD_LIST_TYPES, code: 'folder' }] },
          subject: bundle.entry[0].resource.subject,
          date: new Date().toISOString(),
          extension: [{ url: DESIGNATION_TYPE, valueCodeableConcept: DOCUMENT_CODES.type }],
          entry: [{ item: { reference: bundle.entry[1].fullUrl } }],
          ...folder,
        },
        request: { method: 'POST', url: 'List' },
      });
      return bundle;
    };
    await check('ITI-65 with a Folder: stored, found by ITI-66 with code folder and designationType, gathering the document', async () => {
      const res = await request('POST', '', withFolder(provideBundle(p.id, Buffer.from(`dossier ${run}`))));
      expect(res.status === 200, describe(res));
      const folder = located(res.body?.entry?.[3]?.response?.location);
      const doc = located(res.body?.entry?.[1]?.response?.location);
      expect(folder?.type === 'List' && doc, `locations ${JSON.stringify((res.body?.entry ?? []).map((e: Json) => e.response?.location))}`);
      const found = await ids(
        `List?patient=${encodeURIComponent(`Patient/${p.id}`)}&code=${encodeURIComponent(`${MHD_LIST_TYPES}|folder`)}&designationType=${encodeURIComponent(`${DOCUMENT_CODES.type.coding[0].system}|${DOCUMENT_CODES.type.coding[0].code}`)}`,
      );
      expect(found.includes(folder!.id), `found ${JSON.stringify(found)}`);
      const members = await ids(`DocumentReference?_list=${folder!.id}`);
      expect(members.length === 1 && members[0] === doc!.id, `the Folder gathers ${JSON.stringify(members)}`);
    });
    await check('ITI-65 a Folder without designationType, or gathering a Binary, is refused (4xx, OperationOutcome), nothing stored', async () => {
      const bundle = provideBundle(p.id, Buffer.from(`mauvais dossier ${run}`));
      withFolder(bundle, { extension: [], entry: [{ item: { reference: bundle.entry[2].fullUrl } }] });
      const res = await request('POST', '', bundle);
      expect(res.status >= 400 && res.status < 500 && res.body?.resourceType === 'OperationOutcome', describe(res));
      const mi = bundle.entry[1].resource.masterIdentifier;
      expect((await countByIdentifier('DocumentReference', mi.system, mi.value)) === 0, 'the document was stored');
    });

    await check('ITI-65 a document masterIdentifier already stored is refused (4xx, OperationOutcome), nothing more stored', async () => {
      expect(docId, 'no document was stored');
      const again = provideBundle(p.id, Buffer.from(`autre contenu ${run}`));
      const master = bundle.entry[1].resource.masterIdentifier;
      again.entry[1].resource.masterIdentifier = master;
      const res = await request('POST', '', again);
      expect(res.status >= 400 && res.status < 500, describe(res));
      expect(res.body?.resourceType === 'OperationOutcome', `answered a ${res.body?.resourceType}`);
      expect((await countByIdentifier('DocumentReference', master.system, master.value)) === 1, 'a second document with that masterIdentifier is stored');
      const set = again.entry[0].resource.identifier[0];
      expect((await countByIdentifier('List', set.system, set.value)) === 0, 'its SubmissionSet was stored');
    });

    await check('ITI-65 a SubmissionSet identifier already stored is refused (4xx, OperationOutcome), nothing more stored', async () => {
      expect(listId, 'no SubmissionSet was stored');
      const again = provideBundle(p.id, Buffer.from(`encore ${run}`));
      const set = bundle.entry[0].resource.identifier[0];
      again.entry[0].resource.identifier = [set];
      const res = await request('POST', '', again);
      expect(res.status >= 400 && res.status < 500, describe(res));
      expect(res.body?.resourceType === 'OperationOutcome', `answered a ${res.body?.resourceType}`);
      expect((await countByIdentifier('List', set.system, set.value)) === 1, 'a second SubmissionSet with that identifier is stored');
      const master = again.entry[1].resource.masterIdentifier;
      expect((await countByIdentifier('DocumentReference', master.system, master.value)) === 0, 'its document was stored');
    });

    await check('ITI-65 a hash that is not the content’s is refused (4xx, OperationOutcome), nothing stored', async () => {
      const refused = provideBundle(p.id, Buffer.from(`contenu ${run}`), { hash: sha1(Buffer.from('un autre contenu')) });
      const res = await request('POST', '', refused);
      expect(res.status >= 400 && res.status < 500, describe(res));
      expect(res.body?.resourceType === 'OperationOutcome', `answered a ${res.body?.resourceType}`);
      const master = refused.entry[1].resource.masterIdentifier;
      expect((await countByIdentifier('DocumentReference', master.system, master.value)) === 0, 'the document was stored');
      const set = refused.entry[0].resource.identifier[0];
      expect((await countByIdentifier('List', set.system, set.value)) === 0, 'its SubmissionSet was stored');
    });

    // --- ITI-105
    const published = Buffer.from(`Publication simplifiée ${run}\n`);
    let first: Json | undefined;
    let replacementId: string | undefined;
    await check('ITI-105 simplified publish: 201, attachment.url set, size and SHA-1 hash of the content, the bytes retrievable', async () => {
      const res = await request('POST', 'DocumentReference', publication(p.id, published));
      expect(res.status === 201, describe(res));
      first = res.body;
      const attachment = res.body?.content?.[0]?.attachment ?? {};
      expect(typeof attachment.url === 'string' && attachment.url.length > 0, 'no attachment.url');
      expect(attachment.size === published.length, `attachment.size ${attachment.size}, ${published.length} bytes sent`);
      expect(attachment.hash === sha1(published), `attachment.hash ${attachment.hash}, SHA-1 ${sha1(published)}`);
      const raw = await retrieve(attachment.url, 'text/plain');
      expect(raw.status === 200 && raw.bytes.equals(published), `retrieving ${attachment.url}: ${describe(raw)}, ${raw.bytes.length} bytes`);
    });
    await check('ITI-105 replacement (relatesTo replaces): 201, the old document superseded, both readable', async () => {
      expect(first?.id, 'no document was published');
      const res = await request('POST', 'DocumentReference', publication(p.id, Buffer.from(`version 2 ${run}`), { relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${first!.id}` } }] }));
      expect(res.status === 201, describe(res));
      const old = await request('GET', `DocumentReference/${first!.id}`);
      expect(old.status === 200 && old.body.status === 'superseded', `the old one: ${describe(old)}, status ${old.body?.status}`);
      replacementId = res.body.id;
      const replacement = await request('GET', `DocumentReference/${res.body.id}`);
      expect(replacement.status === 200 && replacement.body.status === 'current', `the new one: ${describe(replacement)}, status ${replacement.body?.status}`);
    });
    await check('ITI-67 by patient and status=current finds the replacement, not the superseded document', async () => {
      expect(first?.id && replacementId, 'no replacement was published');
      const found = await ids(`DocumentReference?patient=${encodeURIComponent(`Patient/${p.id}`)}&status=current`);
      expect(found.includes(replacementId!) && !found.includes(first!.id), `found ${JSON.stringify(found)}`);
    });
    await check('ITI-105 a hash that is not the content’s is refused (4xx, OperationOutcome), nothing stored', async () => {
      const doc = publication(p.id, Buffer.from(`faux ${run}`));
      doc.content[0].attachment.hash = sha1(Buffer.from('un autre contenu'));
      const res = await request('POST', 'DocumentReference', doc);
      expect(res.status >= 400 && res.status < 500, describe(res));
      expect(res.body?.resourceType === 'OperationOutcome', `answered a ${res.body?.resourceType}`);
      expect((await countByIdentifier('DocumentReference', doc.masterIdentifier.system, doc.masterIdentifier.value)) === 0, 'the document was stored');
    });

    // --- the document's life (PDSm flux 03/04): metadata PATCH, archive, labels, deletion
    const life = publication(p.id, Buffer.from(`cycle de vie ${run}`));
    const lifeId = (await request('POST', 'DocumentReference', life)).body?.id as string | undefined;
    const byIdentifier = `DocumentReference?identifier=${encodeURIComponent(`${life.masterIdentifier.system}|${life.masterIdentifier.value}`)}`;
    const jsonPatch = (url: string, operations: unknown) => request('PATCH', url, operations, 'application/fhir+json', 'application/json-patch+json');
    await check('PDSm PATCH of an element other than status, securityLabel, labels or isArchived: 405 with an OperationOutcome, nothing changed', async () => {
      expect(lifeId, 'no document was published');
      const res = await jsonPatch(`DocumentReference/${lifeId}`, [{ op: 'add', path: '/description', value: 'modifié' }]);
      expect(res.status === 405 && res.body?.resourceType === 'OperationOutcome', describe(res));
      const after = await request('GET', `DocumentReference/${lifeId}`);
      expect(after.body?.meta?.versionId === '1' && after.body?.description === undefined, `the document changed: version ${after.body?.meta?.versionId}`);
    });
    await check('PDSm archive by conditional PATCH on the identifier (isArchived): left out of ITI-67 by default, found with isArchived=true, then unarchived', async () => {
      expect(lifeId, 'no document was published');
      const archived = await jsonPatch(byIdentifier, [{ op: 'add', path: '/extension', value: [{ url: IS_ARCHIVED, valueBoolean: true }] }]);
      expect(archived.status === 200, `archiving: ${describe(archived)}`);
      const patientRef = encodeURIComponent(`Patient/${p.id}`);
      expect(!(await ids(`DocumentReference?patient=${patientRef}`)).includes(lifeId!), 'an archived document came back by default');
      expect((await ids(`DocumentReference?patient=${patientRef}&isArchived=true`)).includes(lifeId!), 'isArchived=true did not find it');
      const back = await jsonPatch(byIdentifier, [{ op: 'replace', path: '/extension/0/valueBoolean', value: false }]);
      expect(back.status === 200, `unarchiving: ${describe(back)}`);
      expect((await ids(`DocumentReference?patient=${patientRef}`)).includes(lifeId!), 'the unarchived document is not found by default');
    });
    await check('PDSm visibility label by conditional PATCH on the identifier (meta.security INVISIBLE_PATIENT set, then removed)', async () => {
      expect(lifeId, 'no document was published');
      const set = await jsonPatch(byIdentifier, [{ op: 'add', path: '/meta/security', value: [{ system: A07, code: 'INVISIBLE_PATIENT' }] }]);
      expect(set.status === 200 && (set.body?.meta?.security ?? []).some((c: Json) => c.code === 'INVISIBLE_PATIENT'), `setting: ${describe(set)}`);
      const removed = await jsonPatch(byIdentifier, [{ op: 'remove', path: '/meta/security' }]);
      expect(removed.status === 200 && !removed.body?.meta?.security, `removing: ${describe(removed)}`);
    });
    await check('PDSm entered-in-error by PATCH is refused (4xx, OperationOutcome): a document is deleted, not marked', async () => {
      const res = await jsonPatch(`DocumentReference/${lifeId}`, [{ op: 'replace', path: '/status', value: 'entered-in-error' }]);
      expect(res.status >= 400 && res.status < 500 && res.body?.resourceType === 'OperationOutcome', describe(res));
    });
    await check('deletion by its depositor: then 410 Gone by id, and out of ITI-67', async () => {
      expect(lifeId, 'no document was published');
      const res = await request('DELETE', `DocumentReference/${lifeId}`);
      expect(res.status === 200 || res.status === 204, describe(res));
      const gone = await request('GET', `DocumentReference/${lifeId}`);
      expect(gone.status === 410, `reading it: ${describe(gone)}`);
      expect(!(await ids(`DocumentReference?patient=${encodeURIComponent(`Patient/${p.id}`)}`)).includes(lifeId!), 'a deleted document came back');
    });
  }

  // --- our fixtures, then the official examples: every provide Bundle among them
  for (const dir of options.fixtureDirs) {
    for (const file of jsonFiles(dir)) {
      if (isProvideBundle(readJson(file))) await runFile(`fixture ${path.basename(path.dirname(file))}/${path.basename(file)}`, file);
    }
  }
  if (!options.examplesDir || !fs.existsSync(options.examplesDir)) {
    log(`# the official IHE and ANS examples are absent${options.examplesDir ? ` (${options.examplesDir})` : ''}: our own Bundles only`);
  } else {
    for (const file of jsonFiles(options.examplesDir)) {
      if (isProvideBundle(readJson(file))) await runFile(`example ${path.relative(options.examplesDir, file)}`, file);
    }
  }

  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  log(`${passed} passed, ${failed} failed`);
  return { passed, failed, results };
}

function jsonFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((d) => (d.isDirectory() ? jsonFiles(path.join(dir, d.name)) : d.name.endsWith('.json') ? [path.join(dir, d.name)] : []));
}

function readJson(file: string): Json | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The repository root: the nearest folder above `from` holding package.json and fixtures/. */
export function repositoryRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'fixtures'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no repository root above ${from}`);
  }
}

/** The suite's default inputs, from the repository root. */
export function defaultInputs(root: string): Pick<SuiteOptions, 'fixtureDirs' | 'examplesDir'> {
  return { fixtureDirs: [path.join(root, 'fixtures', 'mhd'), path.join(root, 'fixtures', 'pdsm')], examplesDir: path.resolve(root, '..', 'shared', 'reference', 'examples') };
}

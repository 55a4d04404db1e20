import crypto from 'node:crypto';
import { http, Target } from './harness';
import { documentContext } from './mhd/suite';

/**
 * The actors and records of the access-control suites, built as the access contract
 * describes them: code systems of the French guides, Consents as the contract shapes them,
 * documents with their type, class and visibility labels, tokens from the suite's own
 * identity provider.
 */
export const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
export const R38 = 'https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale';
export const A03 = 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument';
export const A07 = 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument';
export const LOINC = 'http://loinc.org';
export const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
/** The INS (NIR) identifier system, and the system of Device.type the habilitation matrix keys systems by. */
export const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
export const DEVICE_TYPES = 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type';
/** A consultation report (class 10) and a psychiatric summary (class 11, which nurses may not read). */
export const REPORT = { code: '11488-4', cls: '10' };
export const PSYCH = { code: '68599-0', cls: '11' };
/** A report the patient deposits (TRE_A05, class 90: the patient-authored documents). */
export const PATIENT_DOC = { system: 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire', code: 'DOCPAT03', cls: '90' };

export type Json = Record<string, any>;
export const ref = (r: Json) => `${r.resourceType}/${r.id}`;
export const as = (token: string) => ({ authorization: `Bearer ${token}` });

/** Requests to one target as one actor or another. */
export function requests(t: () => Target) {
  const create = async (resource: Json, token?: string): Promise<Json> => {
    const res = await http(t().base, resource.resourceType, { method: 'POST', json: resource, headers: token ? as(token) : {} });
    if (res.status !== 201) throw new Error(`create ${resource.resourceType} answered ${res.status}: ${res.text}`);
    return res.body;
  };
  const get = (path: string, token?: string, headers: Record<string, string> = {}) => http(t().base, path, { headers: { ...(token ? as(token) : {}), ...headers } });
  const send = (method: string, path: string, token: string | undefined, json?: unknown, headers: Record<string, string> = {}) =>
    http(t().base, path, { method, headers: { ...(token ? as(token) : {}), ...headers }, ...(json !== undefined ? { json } : {}) });
  /** A token of the suite's identity provider: an actor (`fhirUser`) or, without one, an administrator. */
  const mint = (fhirUser: string | undefined, scope = 'user/*.cruds', extra: Json = {}) => t().issuer!.mint({ sub: fhirUser ?? 'admin-1', ...(fhirUser ? { fhirUser } : {}), scope, ...extra });
  return { create, get, send, mint };
}

/** A Consent as the access contract shapes it (a declared consent, or one of the patient's choices). */
export function consent(patient: Json, performer: string, provision: Json, policy = 'OPTIN'): Json {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: LOINC, code: '59284-0' }] }],
    patient: { reference: ref(patient) },
    dateTime: new Date().toISOString(),
    performer: [{ reference: performer }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: policy }] },
    provision,
  };
}
/** provision.actor as an information recipient (a declared consent, a block). */
export const ircp = (who: string) => ({ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: who } });
/** provision.actor as the treating physician. */
export const pcp = (who: string) => ({ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PCP' }] }, reference: { reference: who } });

/**
 * An ITI-65 Provide Document Bundle without PDSm metadata: a SubmissionSet and one report
 * naming `subject` (any spelling of the patient), authored by `author`, its text content as
 * a Binary of the Bundle; `uniqueId` draws the SubmissionSet's and the document's unique ids.
 */
export function minimalProvideBundle(o: { subject: string; author: string; uniqueId: () => string; text: string; hash?: string }): Json {
  const doc = `urn:uuid:${crypto.randomUUID()}`;
  const bin = `urn:uuid:${crypto.randomUUID()}`;
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    meta: { profile: ['https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle'] },
    entry: [
      {
        fullUrl: `urn:uuid:${crypto.randomUUID()}`,
        request: { method: 'POST', url: 'List' },
        resource: {
          resourceType: 'List', identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: o.uniqueId() }], status: 'current', mode: 'working',
          code: { coding: [{ system: MHD_LIST_TYPES, code: 'submissionset' }] }, subject: { reference: o.subject }, date: new Date().toISOString(), entry: [{ item: { reference: doc } }],
        },
      },
      {
        fullUrl: doc,
        request: { method: 'POST', url: 'DocumentReference' },
        resource: {
          resourceType: 'DocumentReference', masterIdentifier: { system: 'urn:ietf:rfc:3986', value: o.uniqueId() }, status: 'current',
          type: { coding: [{ system: LOINC, code: REPORT.code }] }, category: [{ coding: [{ system: A03, code: REPORT.cls }] }],
          subject: { reference: o.subject }, author: [{ reference: o.author }],
          content: [{ attachment: { contentType: 'text/plain', url: bin, ...(o.hash ? { hash: o.hash } : {}) } }],
        },
      },
      { fullUrl: bin, request: { method: 'POST', url: 'Binary' }, resource: { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from(o.text).toString('base64') } },
    ],
  };
}

const PDSM_AUTHOR = { resourceType: 'Practitioner', id: 'auteur', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: '810001234567' }], name: [{ family: 'CONFORMITE' }] };
/** An ITI-65 submission for a national record: the minimal one with what PDSm asks of it (decision 029). */
export function pdsmProvideBundle(o: { subject: string; uniqueId: () => string; text: string }): Json {
  const bundle = minimalProvideBundle({ subject: o.subject, author: '#auteur', uniqueId: o.uniqueId, text: o.text });
  const now = new Date().toISOString();
  Object.assign(bundle.entry[0].resource, {
    contained: [PDSM_AUTHOR],
    extension: [
      { url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType', valueCodeableConcept: { coding: [{ system: LOINC, code: REPORT.code }] } },
      { url: 'https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId', valueIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.250.1.999.1' } },
    ],
    source: { reference: '#auteur' },
  });
  const doc = bundle.entry[1].resource;
  Object.assign(doc, {
    contained: [PDSM_AUTHOR, { resourceType: 'Patient', id: 'patient-source', name: [{ family: 'SOURCE' }] }],
    date: now,
    securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }] }],
    content: [{
      attachment: { ...doc.content[0].attachment, language: 'fr-FR', title: 'Compte rendu', creation: now },
      format: { system: 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode', code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient' },
    }],
    context: documentContext(now),
  });
  return bundle;
}

/** A Practitioner acting in an active PractitionerRole of `profession` (TRE_G15), with a TRE_R38 `specialty` if given. */
export async function practitionerWithRole(create: (resource: Json) => Promise<Json>, family: string, profession: string, specialty?: string): Promise<Json> {
  const p = await create({ resourceType: 'Practitioner', name: [{ family }] });
  await create({
    resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) },
    code: [{ coding: [{ system: G15, code: profession }] }],
    ...(specialty ? { specialty: [{ coding: [{ system: R38, code: specialty }] }] } : {}),
  });
  return p;
}

/** A document of a patient's record: type and class, author, TRE_A07 labels, inline content or a link to its Binary (`url`). */
export function document(patient: Json, type: { system?: string; code: string; cls: string }, author: string, labels: string[] = [], url?: string, description = 'doc'): Json {
  return {
    resourceType: 'DocumentReference',
    status: 'current',
    ...(labels.length ? { meta: { security: labels.map((code) => ({ system: A07, code })) } } : {}),
    type: { coding: [{ system: type.system ?? LOINC, code: type.code }] },
    category: [{ coding: [{ system: A03, code: type.cls }] }],
    subject: { reference: ref(patient) },
    author: [{ reference: author }],
    description,
    content: [{ attachment: url ? { contentType: 'text/plain', url } : { contentType: 'text/plain', data: 'dGVzdA==' } }],
  };
}

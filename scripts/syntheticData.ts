/**
 * Deterministic generator of a synthetic national health record dataset (French DMP-like):
 * organisations (FINESS), practitioners (RPPS / idNatPS), practitioner roles (TRE_G15
 * professions, TRE_R38 specialties), patients with an INS (NIR with a valid key),
 * DocumentReferences (JDV_J07 types, JDV_J06 classes, JDV_J58 confidentiality), their
 * Binaries, AuditEvents (patient record access traces) and, on request, Observations.
 *
 * Everything is drawn from a seeded PRNG: the same seed and size give the same resources,
 * ids included, on every machine. Dates are relative to a fixed reference instant
 * (REFERENCE_DATE), not to the clock.
 *
 * INS identifiers use the TEST OID urn:oid:1.2.250.1.213.1.4.10 (INS-NIR-TEST, fictitious
 * test patients), never the production OID 1.2.250.1.213.1.4.8: the data is synthetic.
 * Codes and systems come from /work/shared/reference/codes.json (facts), copied here so
 * the generator does not depend on files outside the repository.
 *
 * Used by scripts/seed.ts (millions of resources, streamed) and src/search/accuracy.test.ts
 * (a few hundred resources with irregular data: partial dates, periods, missing elements).
 */
import crypto from 'node:crypto';
import { nirKey } from '../src/validation/domain/nir';

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/** sfc32 seeded through splitmix32: fast, good enough statistically, identical everywhere. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(values: readonly T[]): T {
    return values[this.int(values.length)];
  }

  /** Picks by weight: entries are [value, weight]. */
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of entries) total += w;
    let x = this.next() * total;
    for (const [v, w] of entries) {
      x -= w;
      if (x < 0) return v;
    }
    return entries[entries.length - 1][0];
  }

  digits(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String(this.int(10));
    return s;
  }

  /** Exponential variate of the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** A version-4 UUID made of PRNG bits (deterministic). */
  uuid(): string {
    const h = (n: number) => n.toString(16).padStart(8, '0');
    const a = h(this.u32());
    const b = h(this.u32());
    const c = h(this.u32());
    const d = h(this.u32());
    const variant = ((parseInt(c[0], 16) & 0x3) | 0x8).toString(16);
    return `${a}-${b.slice(0, 4)}-4${b.slice(5, 8)}-${variant}${c.slice(1, 4)}-${c.slice(4)}${d}`;
  }
}

// ---------------------------------------------------------------------------
// Systems and codes (facts from shared/reference/codes.json and identity-ins.md)
// ---------------------------------------------------------------------------

export const SYSTEMS = {
  /** INS-NIR of fictitious TEST patients (the production OID is urn:oid:1.2.250.1.213.1.4.8). */
  insNirTest: 'urn:oid:1.2.250.1.213.1.4.10',
  insNirProduction: 'urn:oid:1.2.250.1.213.1.4.8',
  identifierType: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203',
  identityStatus: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status',
  idNatPs: 'urn:oid:1.2.250.1.71.4.2.1',
  idNatStruct: 'urn:oid:1.2.250.1.71.4.2.2',
  finess: 'http://finess.sante.gouv.fr',
  loinc: 'http://loinc.org',
  typeDocComplementaire: 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire',
  classeDocument: 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument',
  confidentiality: 'https://mos.esante.gouv.fr/NOS/TRE_A08-HL7Confidentiality/FHIR/TRE-A08-HL7Confidentiality',
  visibility: 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument',
  profession: 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante',
  specialty: 'https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale',
  ipp: 'urn:oid:1.2.250.1.213.1.1.9.99.1',
  documentOidRoot: 'urn:oid:1.2.250.1.213.1.1.9',
  rfc3986: 'urn:ietf:rfc:3986',
  ucum: 'http://unitsofmeasure.org',
  observationCategory: 'http://terminology.hl7.org/CodeSystem/observation-category',
} as const;

export const PROFILES = {
  patient: 'https://fhir.dmp.esante.example/StructureDefinition/dmp-patient-ins',
  practitioner: 'https://fhir.dmp.esante.example/StructureDefinition/dmp-practitioner',
  practitionerRole: 'https://fhir.dmp.esante.example/StructureDefinition/dmp-practitioner-role',
  organization: 'https://fhir.dmp.esante.example/StructureDefinition/dmp-organization',
  documentReference: 'https://fhir.dmp.esante.example/StructureDefinition/dmp-document-reference',
  auditEvent: 'https://fhir.dmp.esante.example/StructureDefinition/dmp-audit-event',
  identityReliability: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability',
  birthListGivenName: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name',
  inseeCode: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code',
  birthPlace: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace',
} as const;

/** A document type (XDS typeCode, JDV_J07) and the class (JDV_J06, TRE_A03) it files under; weight = relative frequency. */
interface DocType {
  system: string;
  code: string;
  display: string;
  classCode: string;
  weight: number;
}

const L = SYSTEMS.loinc;
const A05 = SYSTEMS.typeDocComplementaire;
/** Subset of JDV_J07 (codes.json document_types_JDV_J07_partial). */
export const DOCUMENT_TYPES: readonly DocType[] = [
  { system: L, code: '11488-4', display: 'CR ou fiche de consultation ou de visite', classCode: '10', weight: 20 },
  { system: L, code: '11502-2', display: "CR d'examens biologiques", classCode: '10', weight: 18 },
  { system: L, code: '18748-4', display: "CR d'imagerie médicale", classCode: '31', weight: 10 },
  { system: L, code: '57833-6', display: 'Prescription de produits de santé', classCode: '42', weight: 12 },
  { system: L, code: '60593-1', display: 'Dispensation médicamenteuse', classCode: '43', weight: 6 },
  { system: L, code: '34112-3', display: 'CR hospitalier (séjour)', classCode: '10', weight: 4 },
  { system: L, code: '11490-0', display: "Lettre de liaison à la sortie d'un établissement de soins", classCode: '10', weight: 4 },
  { system: L, code: '15507-7', display: 'CR de passage aux urgences', classCode: '10', weight: 3 },
  { system: L, code: '34874-8', display: 'CR opératoire', classCode: '10', weight: 2 },
  { system: L, code: '60591-5', display: 'Synthèse médicale', classCode: '11', weight: 3 },
  { system: L, code: '11369-6', display: 'Historique des vaccinations', classCode: '11', weight: 2 },
  { system: L, code: '87273-9', display: 'Note de vaccination', classCode: '45', weight: 2 },
  { system: L, code: '57832-8', display: 'Prescription de soins', classCode: '42', weight: 2 },
  { system: L, code: '18776-5', display: 'Plan personnalisé de soins', classCode: '44', weight: 1 },
  { system: L, code: '89601-9', display: 'Certificat médical', classCode: '52', weight: 2 },
  { system: L, code: '60568-3', display: "CR d'anatomie et de cytologie pathologiques", classCode: '10', weight: 1 },
  { system: L, code: '34749-2', display: 'CR de consultation pré-anesthésique', classCode: '10', weight: 1 },
  { system: L, code: '78513-9', display: 'CR de consultation en ophtalmologie', classCode: '10', weight: 1 },
  { system: L, code: '51851-4', display: 'Document administratif', classCode: '95', weight: 1 },
  { system: A05, code: 'REMB', display: 'Données de remboursement', classCode: '60', weight: 4 },
  { system: A05, code: 'SYNTH', display: 'Synthèse', classCode: '11', weight: 1 },
  { system: A05, code: 'PRESC-BIO', display: "Prescription d'actes de biologie médicale", classCode: '42', weight: 2 },
  { system: A05, code: 'PRESC-KINE', display: "Prescription d'actes de kinésithérapie", classCode: '42', weight: 1 },
  { system: A05, code: 'EXPPAT_3', display: 'Directives anticipées', classCode: '90', weight: 0.3 },
  { system: A05, code: 'DOCPAT03', display: 'CR déposé par le patient', classCode: '90', weight: 0.5 },
  { system: A05, code: 'DOCPAT05', display: 'CR de biologie déposé par le patient', classCode: '90', weight: 0.3 },
];

/** JDV_J06 (codes.json class_codes_JDV_J06_complete), TRE_A03 part. */
export const DOCUMENT_CLASSES: Readonly<Record<string, string>> = {
  '10': 'Compte rendu',
  '11': 'Synthèse',
  '31': 'Imagerie médicale',
  '42': 'Prescription',
  '43': 'Dispensation',
  '44': 'Plan de soins, protocole de soins',
  '45': 'Traitement administré',
  '52': 'Certificat, déclaration',
  '60': 'Données de remboursement',
  '90': 'Autres documents déposés par le patient',
  '95': 'Document de gestion',
  '99': 'Document technique',
};

/** TRE_G15 professions (active codes) with their weight among practitioners. */
export const PROFESSIONS: readonly (readonly [code: string, display: string, weight: number])[] = [
  ['10', 'Médecin', 50],
  ['60', 'Infirmier', 15],
  ['21', 'Pharmacien', 10],
  ['70', 'Masseur-Kinésithérapeute', 7],
  ['40', 'Chirurgien-Dentiste', 5],
  ['50', 'Sage-Femme', 3],
  ['91', 'Orthophoniste', 2],
  ['92', 'Orthoptiste', 1],
  ['80', 'Pédicure-Podologue', 1],
  ['86', 'Technicien de laboratoire médical', 2],
  ['98', 'Manipulateur ERM', 2],
  ['95', 'Diététicien', 1],
  ['94', 'Ergothérapeute', 1],
];

/** TRE_R38 specialties of physicians (SM26/SM53/SM54 = general practice). */
export const SPECIALTIES: readonly (readonly [code: string, display: string, weight: number])[] = [
  ['SM54', 'Médecine générale', 30],
  ['SM53', 'Spécialiste en Médecine Générale', 10],
  ['SM26', 'Qualifié en Médecine Générale', 5],
  ['SM04', 'Cardiologie et maladies vasculaires', 5],
  ['SM03', 'Biologie médicale', 5],
  ['SM02', 'Anesthésie-réanimation', 4],
  ['SM05', 'Chirurgie générale', 3],
  ['SM08', 'Chirurgie orthopédique et traumatologie', 3],
  ['SM01', 'Anatomie et cytologie pathologiques', 1],
];

/** Confidentiality (TRE_A08) and visibility (TRE_A07) codes of JDV_J58. */
export const CONFIDENTIALITY: readonly (readonly [code: string, display: string, weight: number])[] = [
  ['N', 'Normal', 85],
  ['R', 'Restreint', 12],
  ['V', 'Très restreint', 3],
];
export const VISIBILITY: readonly (readonly [code: string, display: string])[] = [
  ['MASQUE_PS', 'Masqué aux professionnels de santé'],
  ['INVISIBLE_PATIENT', 'Non visible par le patient'],
  ['INVISIBLE_REPRESENTANTS_LEGAUX', 'Non visible par les représentants légaux du patient'],
];

// ---------------------------------------------------------------------------
// French identity data
// ---------------------------------------------------------------------------

export const FAMILY_NAMES = [
  'Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Richard', 'Petit', 'Durand', 'Leroy', 'Moreau',
  'Simon', 'Laurent', 'Lefèvre', 'Michel', 'Garcia', 'David', 'Bertrand', 'Roux', 'Vincent', 'Fournier',
  'Morel', 'Girard', 'André', 'Mercier', 'Dupont', 'Lambert', 'Bonnet', 'François', 'Martínez', 'Légaré',
  'Hébert', 'Gauthier', 'Chevalier', 'Perrin', 'Noël', 'Lemaître', 'Côté', 'Dupré', 'Le Goff', "N'Diaye",
  'Da Silva', 'Nguyễn', 'Bœuf', 'Müller', 'Château', 'Éluard', 'Bérégovoy', 'Lefebvre', 'Faure', 'Rousseau',
] as const;
export const GIVEN_FEMALE = [
  'Marie', 'Léa', 'Chloé', 'Manon', 'Camille', 'Élodie', 'Hélène', 'Anaïs', 'Zoé', 'Noémie',
  'Cécile', 'Inès', 'Maëlle', 'Agnès', 'Thérèse', 'Béatrice', 'Françoise', 'Joséphine', 'Éloïse', 'Clémence',
] as const;
export const GIVEN_MALE = [
  'Jean', 'Louis', 'Hugo', 'Lucas', 'Jules', 'Jérôme', 'Gaël', 'François', 'Loïc', 'Mathéo',
  'Raphaël', 'Benoît', 'Noël', 'Stéphane', 'Frédéric', 'Hervé', 'Théo', 'Aurélien', 'Jean-Baptiste', 'Rémi',
] as const;
const STREETS = [
  'rue de la République', 'avenue Jean-Jaurès', 'boulevard Voltaire', "rue de l'Église", 'place du Marché',
  'chemin des Écoliers', 'impasse des Lilas', 'allée des Châtaigniers', 'rue Émile-Zola', 'quai Saint-Éloi',
  'rue du Général-de-Gaulle', 'avenue de la Libération', 'rue Pasteur', 'rue des Prés', 'cours Mirabeau',
];

/** Communes: name, postal code, INSEE COG code (5 characters; positions 6-10 of a NIR). */
export const COMMUNES: readonly (readonly [name: string, postalCode: string, insee: string])[] = [
  ['Paris', '75011', '75111'],
  ['Lyon', '69003', '69383'],
  ['Marseille', '13005', '13205'],
  ['Lille', '59000', '59350'],
  ['Nantes', '44000', '44109'],
  ['Bordeaux', '33000', '33063'],
  ['Toulouse', '31000', '31555'],
  ['Strasbourg', '67000', '67482'],
  ['Montpellier', '34000', '34172'],
  ['Rennes', '35000', '35238'],
  ['Nice', '06000', '06088'],
  ['Ajaccio', '20000', '2A004'],
  ['Bastia', '20200', '2B033'],
  ['Besançon', '25000', '25056'],
  ['Orléans', '45000', '45234'],
  ['Saint-Étienne', '42000', '42218'],
  ['Clermont-Ferrand', '63000', '63113'],
  ['Pointe-à-Pitre', '97110', '97120'],
  ['Évry-Courcouronnes', '91000', '91228'],
  ['Périgueux', '24000', '24322'],
];
/** Birth abroad: 99 + INSEE country code. */
const FOREIGN_BIRTH: readonly (readonly [country: string, insee: string])[] = [
  ['Maroc', '99350'],
  ['Algérie', '99352'],
  ['Espagne', '99134'],
  ['Portugal', '99139'],
  ['Allemagne', '99109'],
];

// ---------------------------------------------------------------------------
// Identifier keys
// ---------------------------------------------------------------------------

/** Luhn check digit of a digit string (RPPS, FINESS). */
export function luhnDigit(payload: string): string {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) {
    let d = Number(payload[payload.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

/** Every generated date lies before this instant (fixed, so that the data does not depend on the clock). */
export const REFERENCE_DATE = Date.UTC(2025, 5, 30, 0, 0, 0);
const DAY = 86400000;
const YEAR = 365.25 * DAY;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
export const isoInstant = (ms: number) => new Date(ms).toISOString();
export const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** A dateTime with a French offset (+01:00 in winter, +02:00 in summer, roughly), second precision. */
export function frenchDateTime(ms: number): string {
  const month = new Date(ms).getUTCMonth();
  const offsetHours = month >= 3 && month <= 9 ? 2 : 1;
  const local = new Date(ms + offsetHours * 3600000);
  return `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}+0${offsetHours}:00`;
}

// ---------------------------------------------------------------------------
// Dataset
// ---------------------------------------------------------------------------

/** One generated resource with what the store needs beside it. */
export interface SyntheticResource {
  resource: Record<string, unknown> & { resourceType: string; id: string };
  /** meta.lastUpdated to store (ISO instant). */
  lastUpdated: string;
  /** Raw content of a Binary (the resource carries no data element). */
  binary?: { contentType: string; data: Buffer };
}

export interface DatasetOptions {
  seed: number;
  /** Exact number of resources to produce (the last patient's record may be cut short). */
  resources: number;
  /** Mean DocumentReferences per patient (exponential, at least 1, capped at 20x the mean). */
  documentsPerPatient: number;
  /** One Binary per DocumentReference (content.attachment.url). */
  binaries: boolean;
  /** Mean AuditEvents per DocumentReference. */
  auditEventsPerDocument: number;
  /** Mean Observations per patient (0 = none). */
  observationsPerPatient: number;
  /** Shared resources: one practitioner (and one role) per this many resources, one organisation per 4 practitioners. */
  resourcesPerPractitioner: number;
  /** Probability of irregular data (partial dates, periods, missing optional elements…): 0 for the seed, ~0.25 for tests. */
  irregularity: number;
}

export const DEFAULT_OPTIONS: DatasetOptions = {
  seed: 20250630,
  resources: 1000,
  documentsPerPatient: 20,
  binaries: true,
  auditEventsPerDocument: 0.5,
  observationsPerPatient: 0,
  resourcesPerPractitioner: 500,
  irregularity: 0,
};

/** Counts of the shared (non-patient) resources for a dataset size. */
export function sharedCounts(o: DatasetOptions): { organizations: number; practitioners: number; roles: number } {
  const practitioners = Math.max(4, Math.round(o.resources / o.resourcesPerPractitioner));
  return { organizations: Math.max(2, Math.round(practitioners / 4)), practitioners, roles: practitioners };
}

interface PractitionerInfo {
  id: string;
  roleId: string;
  organizationId: string;
  display: string;
  profession: string;
}

const ORG_KINDS: readonly (readonly [string, string, number])[] = [
  ['Centre hospitalier de', 'SA01', 3],
  ['CHU de', 'SA01', 1],
  ['Clinique Sainte-Thérèse,', 'SA07', 2],
  ['Laboratoire de biologie médicale de', 'SA29', 2],
  ['Centre de radiologie de', 'SA05', 1],
  ['Maison de santé pluriprofessionnelle de', 'SA08', 2],
  ['Pharmacie de la Mairie,', 'SA33', 2],
  ['Cabinet médical de', 'SA08', 3],
];

/**
 * The dataset as a stream, in write order: organisations, practitioners, roles, then each
 * patient followed by its documents, binaries, audit events and observations, until
 * exactly `resources` resources have been produced.
 */
export function* generateDataset(partial: Partial<DatasetOptions> = {}): Generator<SyntheticResource> {
  const o: DatasetOptions = { ...DEFAULT_OPTIONS, ...partial };
  const rng = new Prng(o.seed);
  const irregular = () => o.irregularity > 0 && rng.chance(o.irregularity);
  let produced = 0;
  const counts = sharedCounts(o);
  const start = REFERENCE_DATE - 10 * YEAR;

  // --- organisations ---------------------------------------------------------
  const organizations: { id: string; name: string; commune: (typeof COMMUNES)[number] }[] = [];
  for (let i = 0; i < counts.organizations && produced < o.resources; i++) {
    const id = rng.uuid();
    const commune = rng.pick(COMMUNES);
    const [prefix, activity] = rng.weighted(ORG_KINDS.map(([p, a, w]) => [[p, a] as const, w] as const));
    const name = `${prefix} ${commune[0]}`;
    const dept = /^\d\d/.test(commune[2]) && !commune[2].startsWith('97') ? commune[2].slice(0, 2) : '75';
    const finessPayload = dept + rng.digits(6);
    const finess = finessPayload + luhnDigit(finessPayload);
    const org: Record<string, unknown> & { resourceType: string; id: string } = {
      resourceType: 'Organization',
      id,
      meta: { profile: [PROFILES.organization] },
      identifier: [
        { use: 'official', type: { coding: [{ system: SYSTEMS.identifierType, code: 'IDNST' }] }, system: SYSTEMS.idNatStruct, value: `1${finess}` },
        { system: SYSTEMS.finess, value: finess },
      ],
      active: !irregular(),
      type: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite', code: activity }] }],
      name,
      address: [{ use: 'work', line: [`${rng.range(1, 120)} ${rng.pick(STREETS)}`], city: commune[0], postalCode: commune[1], country: 'FR' }],
      telecom: [{ system: 'phone', value: `0${rng.range(1, 5)}${rng.digits(8)}`, use: 'work' }],
    };
    if (irregular()) org.alias = [`${prefix.split(' ')[0]} ${commune[0].toUpperCase()}`];
    organizations.push({ id, name, commune });
    produced++;
    yield { resource: org, lastUpdated: isoInstant(start + rng.next() * YEAR) };
  }

  // --- practitioners and roles -----------------------------------------------------
  const practitioners: PractitionerInfo[] = [];
  const pending: SyntheticResource[] = [];
  for (let i = 0; i < counts.practitioners && produced < o.resources; i++) {
    const id = rng.uuid();
    const female = rng.chance(0.55);
    const family = rng.pick(FAMILY_NAMES);
    const given = rng.pick(female ? GIVEN_FEMALE : GIVEN_MALE);
    const [profession, professionDisplay] = rng.weighted(PROFESSIONS.map(([c, d, w]) => [[c, d] as const, w] as const));
    const rppsPayload = '10' + rng.digits(8);
    const rpps = rppsPayload + luhnDigit(rppsPayload);
    const doctor = profession === '10' || profession === '40';
    const practitioner: Record<string, unknown> & { resourceType: string; id: string } = {
      resourceType: 'Practitioner',
      id,
      meta: { profile: [PROFILES.practitioner] },
      identifier: [{ use: 'official', type: { coding: [{ system: SYSTEMS.identifierType, code: 'IDNPS' }] }, system: SYSTEMS.idNatPs, value: `8${rpps}` }],
      active: true,
      name: [{ use: 'official', family, given: [given], ...(doctor ? { prefix: ['Dr'] } : {}) }],
      gender: female ? 'female' : 'male',
      telecom: [{ system: 'email', value: `${given}.${family}@mssante.example`.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f' ]/g, ''), use: 'work' }],
    };
    const org = organizations.length ? rng.pick(organizations) : undefined;
    const roleId = rng.uuid();
    const role: Record<string, unknown> & { resourceType: string; id: string } = {
      resourceType: 'PractitionerRole',
      id: roleId,
      meta: { profile: [PROFILES.practitionerRole] },
      active: !irregular(),
      practitioner: { reference: `Practitioner/${id}`, display: `${given} ${family}` },
      ...(org ? { organization: { reference: `Organization/${org.id}`, display: org.name } } : {}),
      code: [{ coding: [{ system: SYSTEMS.profession, code: profession, display: professionDisplay }] }],
      period: { start: isoDate(start - rng.next() * 20 * YEAR), ...(irregular() ? { end: isoDate(REFERENCE_DATE - rng.next() * 2 * YEAR) } : {}) },
    };
    if (profession === '10') {
      const [code, display] = rng.weighted(SPECIALTIES.map(([c, d, w]) => [[c, d] as const, w] as const));
      role.specialty = [{ coding: [{ system: SYSTEMS.specialty, code, display }] }];
    }
    practitioners.push({ id, roleId, organizationId: org?.id ?? '', display: `${doctor ? 'Dr ' : ''}${given} ${family}`, profession });
    produced++;
    yield { resource: practitioner, lastUpdated: isoInstant(start + rng.next() * YEAR) };
    pending.push({ resource: role, lastUpdated: isoInstant(start + rng.next() * YEAR) });
  }
  for (const role of pending) {
    if (produced >= o.resources) return;
    produced++;
    yield role;
  }

  // --- patients and their records ----------------------------------------------------
  const usedNirs = new Set<string>();
  let documentSeq = 0;
  while (produced < o.resources) {
    const patientId = rng.uuid();
    const female = rng.chance(0.52);
    const birthMs = REFERENCE_DATE - (1 + rng.next() * 94) * YEAR;
    const birth = new Date(birthMs);
    const abroad = rng.chance(0.08);
    const birthCommune = rng.pick(COMMUNES);
    const foreign = rng.pick(FOREIGN_BIRTH);
    const inseeBirth = abroad ? foreign[1] : birthCommune[2];
    let nir: string;
    do {
      const body = `${female ? 2 : 1}${pad(birth.getUTCFullYear() % 100)}${pad(birth.getUTCMonth() + 1)}${inseeBirth}${pad(rng.range(1, 999), 3)}`;
      nir = body + nirKey(body);
    } while (usedNirs.has(nir));
    usedNirs.add(nir);
    const family = rng.pick(FAMILY_NAMES);
    const givenList = [rng.pick(female ? GIVEN_FEMALE : GIVEN_MALE), ...(rng.chance(0.6) ? [rng.pick(female ? GIVEN_FEMALE : GIVEN_MALE)] : [])];
    const home = rng.pick(COMMUNES);
    const careTeam = Array.from({ length: Math.min(practitioners.length, rng.range(2, 6)) }, () => rng.pick(practitioners));
    const treating = careTeam.find((p) => p.profession === '10') ?? careTeam[0];
    const names: Record<string, unknown>[] = [
      {
        extension: [{ url: PROFILES.birthListGivenName, valueString: givenList.join(' ') }],
        use: 'official',
        family,
        given: [givenList[0]],
      },
    ];
    if (female && rng.chance(0.3)) names.push({ use: 'usual', family: rng.pick(FAMILY_NAMES), given: [givenList[0]] });
    let birthDate = isoDate(birthMs);
    if (irregular()) birthDate = rng.chance(0.5) ? birthDate.slice(0, 7) : birthDate.slice(0, 4);
    const patient: Record<string, unknown> & { resourceType: string; id: string } = {
      resourceType: 'Patient',
      id: patientId,
      meta: { profile: [PROFILES.patient] },
      extension: [
        {
          url: PROFILES.identityReliability,
          extension: [
            { url: 'identityStatus', valueCoding: { system: SYSTEMS.identityStatus, code: qualifiedIdentityStatus(rng) } },
            { url: 'methodCollection', valueCoding: { system: 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-method-collection', code: rng.pick(['INSI', 'CV', 'AV']) } },
          ],
        },
        {
          url: PROFILES.birthPlace,
          valueAddress: abroad
            ? { extension: [{ url: PROFILES.inseeCode, valueCoding: { code: foreign[1] } }], country: foreign[0] }
            : { extension: [{ url: PROFILES.inseeCode, valueCoding: { code: birthCommune[2] } }], city: birthCommune[0], country: 'FR' },
        },
      ],
      identifier: [
        { use: 'official', type: { coding: [{ system: SYSTEMS.identifierType, code: 'INS-NIR-TEST' }] }, system: SYSTEMS.insNirTest, value: nir },
        { use: 'usual', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PI' }] }, system: SYSTEMS.ipp, value: `IPP${rng.digits(9)}` },
      ],
      active: !irregular() || rng.chance(0.5),
      name: names,
      gender: female ? 'female' : 'male',
      ...(irregular() && rng.chance(0.3) ? {} : { birthDate }),
      ...(irregular() && rng.chance(0.4) ? {} : { address: [{ use: 'home', line: [`${rng.range(1, 150)} ${rng.pick(STREETS)}`], city: home[0], postalCode: home[1], country: 'FR' }] }),
      ...(irregular() && rng.chance(0.5) ? {} : { telecom: [{ system: 'phone', value: `06${rng.digits(8)}`, use: 'mobile' }] }),
      ...(irregular() && rng.chance(0.3) ? {} : { generalPractitioner: [{ reference: `Practitioner/${treating.id}` }] }),
      ...(irregular() && rng.chance(0.3) ? (rng.chance(0.5) ? { deceasedBoolean: true } : { deceasedDateTime: frenchDateTime(REFERENCE_DATE - rng.next() * YEAR) }) : {}),
      ...(treating.organizationId && rng.chance(0.3) ? { managingOrganization: { reference: `Organization/${treating.organizationId}` } } : {}),
    };
    // dmp-patient-ins requires a birth date: a patient whose birth date is unknown does not claim it (a plain R4 Patient).
    if (patient.birthDate === undefined) delete patient.meta;
    const ins = { system: SYSTEMS.insNirTest, value: nir };
    produced++;
    yield { resource: patient, lastUpdated: isoInstant(start + rng.next() * YEAR) };

    const documents = Math.min(20 * o.documentsPerPatient, 1 + Math.round(rng.exponential(Math.max(0, o.documentsPerPatient - 1))));
    const docIds: { id: string; date: number; authorId: string }[] = [];
    for (let d = 0; d < documents && produced < o.resources; d++) {
      const docId = rng.uuid();
      const binaryId = rng.uuid();
      const type = rng.weighted(DOCUMENT_TYPES.map((t) => [t, t.weight] as const));
      const dateMs = Math.floor(start + rng.next() * (REFERENCE_DATE - start - DAY));
      const author = rng.chance(0.85) ? rng.pick(careTeam) : rng.pick(practitioners);
      const byPatient = type.classCode === '90';
      const [conf, confDisplay] = rng.weighted(CONFIDENTIALITY.map(([c, dd, w]) => [[c, dd] as const, w] as const));
      const securityLabel: Record<string, unknown>[] = [{ coding: [{ system: SYSTEMS.confidentiality, code: conf, display: confDisplay }] }];
      if (rng.chance(0.04)) {
        const [vc, vd] = rng.pick(VISIBILITY);
        securityLabel.push({ coding: [{ system: SYSTEMS.visibility, code: vc, display: vd }] });
      }
      const pdf = rng.chance(0.85);
      const contentType = pdf ? 'application/pdf' : rng.pick(['text/plain', 'application/xml', 'image/jpeg']);
      const content = syntheticContent(docId, type.display, dateMs, contentType);
      const sha1 = crypto.createHash('sha1').update(content).digest('base64');
      const periodStart = dateMs - rng.range(10, 240) * 60000;
      const custodian = organizations.find((x) => x.id === author.organizationId) ?? (organizations.length ? rng.pick(organizations) : undefined);
      const doc: Record<string, unknown> & { resourceType: string; id: string } = {
        resourceType: 'DocumentReference',
        id: docId,
        meta: { profile: [PROFILES.documentReference] },
        contained: [{ resourceType: 'Patient', id: 'spi', identifier: [ins], name: [{ family, given: [givenList[0]] }], gender: female ? 'female' : 'male', birthDate: isoDate(birthMs) }],
        masterIdentifier: { system: SYSTEMS.rfc3986, value: `${SYSTEMS.documentOidRoot}.${o.seed % 100000}.${++documentSeq}` },
        identifier: [{ use: 'usual', system: SYSTEMS.rfc3986, value: `urn:uuid:${rng.uuid()}` }],
        status: rng.chance(0.05) ? 'superseded' : 'current',
        type: { coding: [{ system: type.system, code: type.code, display: type.display }] },
        category: [{ coding: [{ system: SYSTEMS.classeDocument, code: type.classCode, display: DOCUMENT_CLASSES[type.classCode] }] }],
        subject: { reference: `Patient/${patientId}` },
        date: isoInstant(dateMs),
        author: byPatient ? [{ reference: `Patient/${patientId}` }] : [{ reference: `Practitioner/${author.id}`, display: author.display }],
        ...(custodian && !(irregular() && rng.chance(0.4)) ? { custodian: { reference: `Organization/${custodian.id}`, display: custodian.name } } : {}),
        ...(irregular() && rng.chance(0.4) ? {} : { description: `${type.display} — ${author.display}` }),
        securityLabel,
        content: [
          {
            attachment: {
              contentType,
              language: 'fr-FR',
              url: `Binary/${binaryId}`,
              size: content.length,
              hash: sha1,
              title: type.display,
              creation: frenchDateTime(dateMs - 5 * 60000),
            },
            format: { system: 'http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode', code: pdf ? 'urn:ihe:iti:xds:2017:mimeTypeSufficient' : 'urn:ihe:iti:xds-sd:text:2008' },
          },
        ],
        context: {
          period: irregular() && rng.chance(0.5) ? { start: frenchDateTime(periodStart) } : { start: frenchDateTime(periodStart), end: frenchDateTime(dateMs - 60000) },
          facilityType: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite', code: rng.pick(['SA01', 'SA05', 'SA07', 'SA08', 'SA29', 'SA33']) }] },
          practiceSetting: { coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A00-ProducteurDocNonPS/FHIR/TRE-A00-ProducteurDocNonPS', code: rng.pick(['ORG01', 'ORG02', 'ORG03']) }] },
          sourcePatientInfo: { reference: '#spi' },
        },
      };
      docIds.push({ id: docId, date: dateMs, authorId: author.id });
      produced++;
      yield { resource: doc, lastUpdated: isoInstant(dateMs + rng.range(1, 120) * 60000) };
      if (o.binaries && produced < o.resources) {
        produced++;
        yield {
          resource: { resourceType: 'Binary', id: binaryId, contentType, securityContext: { reference: `Patient/${patientId}` } },
          lastUpdated: isoInstant(dateMs + rng.range(1, 120) * 60000),
          binary: { contentType, data: content },
        };
      }
    }

    // Access traces: a professional (or the patient) consulted one of the documents.
    const audits = docIds.length ? Math.round(docIds.length * o.auditEventsPerDocument + (rng.next() - 0.5)) : 0;
    for (let a = 0; a < audits && produced < o.resources; a++) {
      const doc = rng.pick(docIds);
      const byPatient = rng.chance(0.1);
      const who = rng.chance(0.7) ? practitioners.find((p) => p.id === doc.authorId) ?? rng.pick(careTeam) : rng.pick(practitioners);
      const recorded = Math.min(REFERENCE_DATE - 1000, doc.date + rng.exponential(60) * DAY);
      const audit: Record<string, unknown> & { resourceType: string; id: string } = {
        resourceType: 'AuditEvent',
        id: rng.uuid(),
        meta: { profile: [PROFILES.auditEvent] },
        type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110110', display: 'Patient Record' },
        subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: rng.chance(0.7) ? 'read' : 'search-type' }],
        action: 'R',
        recorded: isoInstant(recorded),
        outcome: rng.chance(0.97) ? '0' : '4',
        agent: [
          byPatient
            ? { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleClass', code: 'PAT' }] }, who: { reference: `Patient/${patientId}` }, requestor: true }
            : {
                type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] },
                who: { reference: `Practitioner/${who.id}`, display: who.display },
                name: who.display,
                requestor: true,
                network: { address: `10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`, type: '2' },
              },
        ],
        source: { site: 'DMP', observer: { display: 'DMP - hébergeur national' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4' }] },
        entity: [
          { what: { reference: `DocumentReference/${doc.id}` }, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2' }, role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '3' } },
          { what: { reference: `Patient/${patientId}` }, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1' }, role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1' } },
        ],
      };
      produced++;
      yield { resource: audit, lastUpdated: isoInstant(recorded + 1000) };
    }

    const observations = o.observationsPerPatient > 0 ? Math.round(rng.exponential(o.observationsPerPatient)) : 0;
    for (let k = 0; k < observations && produced < o.resources; k++) {
      const obs = observationResource(rng, patientId, rng.pick(careTeam).id, start, irregular);
      produced++;
      yield obs;
    }
  }
}

/**
 * The RNIV status of an identity that carries an active INS: always QUAL (dmp-patient-ins,
 * dmp-pat-3). It still takes the one PRNG draw a status used to take here, so that the
 * rest of the dataset (ids, values) is unchanged.
 */
function qualifiedIdentityStatus(rng: Prng): 'QUAL' {
  rng.next();
  return 'QUAL';
}

/** Laboratory results and vital signs: (LOINC code, display, UCUM code, unit shown, typical value, spread, decimals, category). */
const OBSERVATION_CODES: readonly (readonly [string, string, string, string, number, number, number, string])[] = [
  ['2345-7', 'Glucose [Mass/volume] in Serum or Plasma', 'mg/dL', 'mg/dL', 95, 25, 0, 'laboratory'],
  ['718-7', 'Hemoglobin [Mass/volume] in Blood', 'g/dL', 'g/dL', 13.5, 2, 1, 'laboratory'],
  ['2160-0', 'Creatinine [Moles/volume] in Serum or Plasma', 'umol/L', 'µmol/L', 80, 25, 0, 'laboratory'],
  ['8867-4', 'Heart rate', '/min', 'battements/min', 72, 12, 0, 'vital-signs'],
  ['8480-6', 'Systolic blood pressure', 'mm[Hg]', 'mmHg', 128, 15, 0, 'vital-signs'],
  ['29463-7', 'Body weight', 'kg', 'kg', 70, 15, 1, 'vital-signs'],
  ['8310-5', 'Body temperature', 'Cel', '°C', 37, 0.6, 1, 'vital-signs'],
];

function observationResource(rng: Prng, patientId: string, performerId: string, start: number, irregular: () => boolean): SyntheticResource {
  const [code, display, ucum, unit, typical, spread, decimals, category] = rng.pick(OBSERVATION_CODES);
  const whenMs = Math.floor(start + rng.next() * (REFERENCE_DATE - start - DAY));
  let effective: Record<string, unknown>;
  if (irregular()) {
    const kind = rng.int(6);
    const dt = frenchDateTime(whenMs);
    if (kind === 0) effective = { effectiveDateTime: dt.slice(0, 4) };
    else if (kind === 1) effective = { effectiveDateTime: dt.slice(0, 7) };
    else if (kind === 2) effective = { effectiveDateTime: dt.slice(0, 10) };
    else if (kind === 3) effective = { effectivePeriod: { start: dt, end: frenchDateTime(whenMs + rng.range(1, 72) * 3600000) } };
    else if (kind === 4) effective = { effectivePeriod: { start: dt } };
    else effective = { effectiveDateTime: isoInstant(whenMs).replace('Z', '-05:00').replace(/\.\d{3}/, '') };
  } else effective = { effectiveDateTime: frenchDateTime(whenMs) };
  const value = Number((typical + (rng.next() * 2 - 1) * spread).toFixed(decimals));
  let valueElement: Record<string, unknown>;
  if (irregular()) {
    const kind = rng.int(4);
    if (kind === 0) valueElement = { dataAbsentReason: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-performed' }] } };
    else if (kind === 1) valueElement = { valueString: rng.pick(['Résultat normal', 'Hémolyse', 'Échantillon insuffisant', 'Voir compte rendu']) };
    else if (kind === 2) valueElement = { valueQuantity: { value, unit } }; // no system/code: only the unit
    else valueElement = { valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: rng.pick(['260385009', '10828004']) }], text: rng.pick(['Négatif', 'Positif']) } };
  } else valueElement = { valueQuantity: { value, unit, system: SYSTEMS.ucum, code: ucum } };
  const resource: Record<string, unknown> & { resourceType: string; id: string } = {
    resourceType: 'Observation',
    id: rng.uuid(),
    identifier: [{ system: 'urn:oid:1.2.250.1.213.1.1.9.99.2', value: `OBS-${rng.digits(10)}` }],
    status: rng.weighted([['final', 8], ['amended', 1], ['preliminary', 1]] as const),
    category: [{ coding: [{ system: SYSTEMS.observationCategory, code: category }] }],
    code: { coding: [{ system: SYSTEMS.loinc, code, display }], text: display },
    subject: { reference: `Patient/${patientId}` },
    ...effective,
    ...(irregular() && rng.chance(0.5) ? {} : { performer: [{ reference: `Practitioner/${performerId}` }] }),
    ...valueElement,
  };
  return { resource, lastUpdated: isoInstant(whenMs + rng.range(1, 48) * 3600000) };
}

/** A few hundred bytes standing for the document (a minimal PDF-like text). */
function syntheticContent(docId: string, title: string, dateMs: number, contentType: string): Buffer {
  const text = `Document synthétique ${docId}\n${title}\nDate : ${isoDate(dateMs)}\nDonnées fictives générées pour les tests de performance.\n`;
  if (contentType === 'application/pdf') return Buffer.from(`%PDF-1.4\n% ${text}%%EOF\n`, 'utf8');
  if (contentType === 'application/xml') return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument><title>${title}</title><text>${text}</text></ClinicalDocument>\n`, 'utf8');
  if (contentType === 'image/jpeg') return Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from(text, 'utf8'), Buffer.from([0xff, 0xd9])]);
  return Buffer.from(text, 'utf8');
}

/**
 * A small, irregular dataset for search accuracy tests: patients, practitioners, roles,
 * organisations, documents, audit events and observations (no Binaries), about `size`
 * resources in all.
 */
export function smallDataset(seed: number, size = 300): SyntheticResource[] {
  return [
    ...generateDataset({
      seed,
      resources: size,
      documentsPerPatient: 5,
      binaries: false,
      auditEventsPerDocument: 0.3,
      observationsPerPatient: 4,
      resourcesPerPractitioner: 25,
      irregularity: 0.25,
    }),
  ];
}

/**
 * Writes a synthetic national-record dataset as NDJSON, for the bulk loader
 * (npm run load) and the search benchmark at scale:
 *
 *   npm run generate -- --patients 100000 --out /tmp/dmp.ndjson [--documents 6] [--binaries] [--seed N]
 *
 * The resources of scripts/syntheticData.ts (organisations, practitioners, roles, patients
 * with their documents and access traces), in write order, plus for each patient a declared
 * access Consent (decision 008) performed by a practitioner of the directory, so that a
 * professional's token reaches a known set of records. Also writes OUT.practitioners.json:
 * for each practitioner, the patients whose Consent names them (what the benchmark samples).
 */
import fs from 'node:fs';
import { once } from 'node:events';
import { parseArgsOrExit, UsageError } from './benchLib';
import { DEFAULT_OPTIONS, generateDataset } from './syntheticData';

interface Options {
  patients: number;
  out: string;
  documents: number;
  binaries: boolean;
  seed: number;
}

const USAGE = `Usage: npm run generate -- --patients N --out FILE.ndjson [--documents MEAN_PER_PATIENT] [--binaries] [--seed ${DEFAULT_OPTIONS.seed}]`;

function parseArgs(argv: string[]): Options {
  const o: Options = { patients: 0, out: '', documents: 6, binaries: false, seed: DEFAULT_OPTIONS.seed };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const num = () => {
      const n = Number(argv[++i]);
      if (!Number.isFinite(n) || n < 0) throw new UsageError(`${arg} needs a number`);
      return n;
    };
    if (arg === '--patients') o.patients = Math.round(num());
    else if (arg === '--out') o.out = argv[++i] ?? '';
    else if (arg === '--documents') o.documents = num();
    else if (arg === '--seed') o.seed = Math.round(num());
    else if (arg === '--binaries') o.binaries = true;
    else if (arg === '--help' || arg === '-h') throw new UsageError('');
    else throw new UsageError(`Unknown option ${arg}`);
  }
  if (!o.patients || !o.out) throw new UsageError('--patients and --out are required');
  return o;
}

const LOINC = 'http://loinc.org';

/** A professional's declared access consent, as the access contract shapes it. */
function declaredConsent(id: string, patientId: string, practitionerId: string, dateTime: string): Record<string, unknown> {
  return {
    resourceType: 'Consent',
    id,
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: LOINC, code: '59284-0' }] }],
    patient: { reference: `Patient/${patientId}` },
    dateTime,
    performer: [{ reference: `Practitioner/${practitionerId}` }],
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision: {
      type: 'permit',
      actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: `Practitioner/${practitionerId}` } }],
    },
  };
}

async function main(): Promise<void> {
  const o = parseArgsOrExit(parseArgs, USAGE);
  const out = fs.createWriteStream(o.out);
  const write = async (line: string) => {
    if (!out.write(line + '\n')) await once(out, 'drain');
  };
  // about ten resources per patient with six documents: sized so that the directory scales with the records
  const estimate = o.patients * Math.max(3, Math.round(1 + o.documents * 1.5 + 1));
  const source = generateDataset({ seed: o.seed, resources: estimate * 4, documentsPerPatient: o.documents, binaries: o.binaries });
  const practitioners: string[] = [];
  const consentsOf = new Map<string, string[]>();
  // consents are dated now: a declared consent lasts CONSENT_DEFAULT_DAYS from its date
  const now = new Date().toISOString();
  let patients = 0;
  let lines = 0;
  const started = Date.now();
  for (const s of source) {
    const r = s.resource;
    if (r.resourceType === 'Patient' && ++patients > o.patients) break;
    const body = s.binary ? { ...r, data: s.binary.data.toString('base64') } : r;
    await write(JSON.stringify(body));
    lines++;
    if (r.resourceType === 'Practitioner') practitioners.push(r.id);
    if (r.resourceType === 'Patient') {
      // each record is open to one professional of the directory, drawn by its number
      const practitioner = practitioners[patients % practitioners.length];
      await write(JSON.stringify(declaredConsent(`consent-${r.id}`, r.id, practitioner, now)));
      lines++;
      const list = consentsOf.get(practitioner) ?? [];
      list.push(r.id);
      consentsOf.set(practitioner, list);
    }
    if (lines % 100_000 === 0) process.stderr.write(`… ${lines.toLocaleString('en-US')} lines, ${Math.min(patients, o.patients).toLocaleString('en-US')} patients\n`);
  }
  out.end();
  await once(out, 'finish');
  fs.writeFileSync(`${o.out}.practitioners.json`, JSON.stringify(Object.fromEntries(consentsOf)));
  console.log(`${lines.toLocaleString('en-US')} resources (${Math.min(patients, o.patients).toLocaleString('en-US')} patients, ${practitioners.length} practitioners) written to ${o.out} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});

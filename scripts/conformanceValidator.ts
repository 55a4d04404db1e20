/**
 * Runs FHIR validator test cases, in the manifest format of the public HL7 test cases
 * (github.com/FHIR/fhir-test-cases, folder `validator/`, `manifest.json`), against a
 * running server's `$validate`, and prints how often its verdict agrees with the reference
 * validator's, per set and per format:
 *
 *   npm run conformance:validator -- --cases DIR [--base URL] [--token TOKEN] [--only REGEX] [--verbose]
 *
 * DIR holds a `manifest.json` and the files it names (a clone of fhir-test-cases/validator
 * is such a directory: `git clone --depth 1 https://github.com/FHIR/fhir-test-cases` then
 * `--cases fhir-test-cases/validator`; the cases are not part of this project). The base
 * URL defaults to BASE_URL, the token to TOKEN (any client token: nothing is written).
 *
 * Only R4 cases (`"version": "4.0"`, or 4.0.x) are run, in JSON and in XML. A case is in the
 * set `base` (no supporting files), `supporting` (it names StructureDefinitions, ValueSets,
 * CodeSystems or Questionnaires) or `profile` (it is validated against a profile). The
 * supporting definitions and the profile are sent in the `$validate` Parameters as
 * `definition` parameters (decision 028): the context of that one validation, used as they
 * are, never stored — as the reference validator takes them. The resource goes in as its
 * file's text, in its own format (so what a parser finds, a duplicate key or a bad XML
 * namespace, is found by the server's reader too). A case that needs IG packages, or
 * supporting files of other kinds, is counted as not run. The expected outcome is the
 * reference (`java`) one; the server agrees when both find errors or both find none, and
 * matches exactly when the error counts are equal too. The manifest records that outcome as
 * an error count (`java.errorCount`, older manifests) or as the reference validator's
 * OperationOutcome (`java.outcome`, current ones): both are read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { jsonTextToXml } from '../src/xml/convert';
import { readXml } from '../src/xml/readXml';

const CONFORMANCE_TYPES = new Set(['StructureDefinition', 'ValueSet', 'CodeSystem', 'Questionnaire']);

export interface Expectation {
  errorCount?: number;
  /** the current manifest records the reference validator's OperationOutcome instead of a count */
  outcome?: { issue?: { severity?: string }[] };
}

/** Errors the reference validator found: its count, else the error and fatal issues of its outcome. */
export function expectedErrors(e: Expectation | undefined): number | undefined {
  if (typeof e?.errorCount === 'number') return e.errorCount;
  if (e?.outcome && typeof e.outcome === 'object') return (Array.isArray(e.outcome.issue) ? e.outcome.issue : []).filter((i) => i?.severity === 'error' || i?.severity === 'fatal').length;
  return undefined;
}

export interface ValidatorCase {
  name: string;
  file: string;
  version?: string;
  supporting?: string[];
  profiles?: string[];
  packages?: string[];
  profile?: { source?: string; supporting?: string[]; packages?: string[]; java?: Expectation };
  java?: Expectation;
  module?: string;
  'use-test'?: boolean;
  [option: string]: unknown;
}

/** Manifest modules that validate something other than a FHIR resource (logical models, CDS Hooks, CDA, health cards). */
const OTHER_MODULES = new Set(['logical', 'cdshooks', 'cda', 'shc']);
/** Validator settings a case may ask for that a server's $validate has no parameter for. */
const SETTINGS = ['allow-comments', 'noHtmlInMarkdown', 'security-checks', 'best-practice', 'examples', 'assumeValidRestReferences', 'allowed-extension-domain', 'bundle-param', 'validate', 'language', 'default-version', 'logical', 'validateContains', 'validateReference', 'generate-shapshot'];

/** The profile step is run when the case has one that needs no IG package (else the base step is). */
const profileStep = (c: ValidatorCase): boolean => !!c.profile?.source && !c.profile.packages?.length;

export type CaseSet = 'base' | 'supporting' | 'profile';
export type CaseFormat = 'json' | 'xml';

export interface CaseResult {
  name: string;
  set: CaseSet;
  format: CaseFormat;
  /** why the case was not run */
  skipped?: string;
  expectedErrors?: number;
  errors?: number;
  agrees?: boolean;
  exact?: boolean;
}

export interface Summary {
  set: CaseSet;
  format: CaseFormat;
  run: number;
  agree: number;
  exact: number;
}

export function caseSet(c: ValidatorCase): CaseSet {
  if (profileStep(c)) return 'profile';
  return (c.supporting?.length ?? 0) + (c.profiles?.length ?? 0) > 0 ? 'supporting' : 'base';
}

export const caseFormat = (c: ValidatorCase): CaseFormat => (c.file.endsWith('.xml') ? 'xml' : 'json');

/** Why a case cannot be run here, or undefined. */
export function notRunnable(c: ValidatorCase, dir: string): string | undefined {
  if (c.version !== '4.0' && !c.version?.startsWith('4.0.')) return `FHIR version ${c.version ?? '5.0'}`;
  if (!c.file.endsWith('.json') && !c.file.endsWith('.xml')) return 'neither JSON nor XML';
  if (c['use-test'] === false) return 'not used by the manifest (use-test: false)';
  if (c.module && OTHER_MODULES.has(c.module)) return `module ${c.module}`;
  const setting = SETTINGS.find((k) => c[k] !== undefined);
  if (setting) return `validator setting ${setting}`;
  if (c.packages?.length) return 'needs IG packages';
  if (expectedErrors(profileStep(c) ? c.profile!.java : c.java) === undefined) return 'no reference outcome';
  for (const f of [c.file, ...definitionFiles(c)]) {
    if (!fs.existsSync(path.join(dir, f))) return `missing file ${f}`;
  }
  for (const f of definitionFiles(c)) {
    const type = readResource(path.join(dir, f))?.resourceType;
    if (!CONFORMANCE_TYPES.has(type) && type !== 'Bundle') return `supporting ${type ?? 'file'} cannot be used`;
  }
  if (profileStep(c) && readResource(path.join(dir, c.profile!.source!))?.resourceType !== 'StructureDefinition') return 'the profile is not a StructureDefinition';
  return undefined;
}

function supportingFiles(c: ValidatorCase): string[] {
  return [...(c.supporting ?? []), ...(c.profiles ?? []), ...(profileStep(c) ? c.profile!.supporting ?? [] : [])];
}

/** Every definition file of a case: its supporting files, and its profile in the profile step. */
function definitionFiles(c: ValidatorCase): string[] {
  return [...new Set([...supportingFiles(c), ...(profileStep(c) ? [c.profile!.source!] : [])])];
}

const READ_LIMITS = { maxDepth: 1000, maxNodes: 50_000_000, maxArrayLength: 10_000_000 };

/** A JSON or XML file's resource, as JSON (undefined when it cannot be read). */
function readResource(file: string): any {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return file.endsWith('.xml') ? readXml(text, READ_LIMITS).value : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A file's text as the body of an element of the given format, converted when it is in the other one. */
function resourceText(file: string, format: CaseFormat): string {
  const text = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  if (format === 'json') return file.endsWith('.json') ? text : JSON.stringify(readXml(text, READ_LIMITS).value);
  // the XML declaration cannot stand inside another element
  return file.endsWith('.xml') ? text.replace(/^\s*<\?xml[^>]*\?>/, '') : jsonTextToXml(text);
}

/** The $validate Parameters: the resource as its file's text, then each definition. */
export function validateBody(dir: string, c: ValidatorCase): { contentType: string; body: string } {
  const format = caseFormat(c);
  const resource = resourceText(path.join(dir, c.file), format);
  const definitions = definitionFiles(c).map((f) => resourceText(path.join(dir, f), format));
  if (format === 'json') {
    const params = [`{"name":"resource","resource":${resource}}`, ...definitions.map((d) => `{"name":"definition","resource":${d}}`)];
    return { contentType: 'application/fhir+json', body: `{"resourceType":"Parameters","parameter":[${params.join(',')}]}` };
  }
  const param = (name: string, xml: string) => `<parameter><name value="${name}"/><resource>${xml}</resource></parameter>`;
  return {
    contentType: 'application/fhir+xml',
    body: `<Parameters xmlns="http://hl7.org/fhir">${param('resource', resource)}${definitions.map((d) => param('definition', d)).join('')}</Parameters>`,
  };
}

interface Client {
  base: string;
  token?: string;
}

const errorCount = (oo: any): number => (Array.isArray(oo?.issue) ? oo.issue.filter((i: any) => i?.severity === 'error' || i?.severity === 'fatal').length : 0);

export async function runCase(client: Client, dir: string, c: ValidatorCase): Promise<CaseResult> {
  const set = caseSet(c);
  const format = caseFormat(c);
  const why = notRunnable(c, dir);
  if (why) return { name: c.name, set, format, skipped: why };
  try {
    let query = '';
    if (profileStep(c)) query = `?profile=${encodeURIComponent(readResource(path.join(dir, c.profile!.source!)).url)}`;
    const { contentType, body } = validateBody(dir, c);
    const res = await fetch(`${client.base.replace(/\/$/, '')}/$validate${query}`, {
      method: 'POST',
      headers: { accept: 'application/fhir+json', 'content-type': contentType, ...(client.token ? { authorization: `Bearer ${client.token}` } : {}) },
      body,
    });
    const text = await res.text();
    let outcome: any;
    try {
      outcome = text ? JSON.parse(text) : undefined;
    } catch {
      outcome = undefined;
    }
    const expected = expectedErrors(profileStep(c) ? c.profile!.java : c.java)!;
    // a validation the server cannot do (4xx) counts as "errors found"
    const errors = res.status === 200 ? errorCount(outcome) : Math.max(1, errorCount(outcome));
    return { name: c.name, set, format, expectedErrors: expected, errors, agrees: expected > 0 === errors > 0, exact: expected === errors };
  } catch (e) {
    return { name: c.name, set, format, skipped: (e as Error).message };
  }
}

export async function runCases(client: Client, dir: string, filter?: RegExp): Promise<CaseResult[]> {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const cases: ValidatorCase[] = Array.isArray(manifest?.['test-cases']) ? manifest['test-cases'] : [];
  const out: CaseResult[] = [];
  for (const c of cases) if (!filter || filter.test(c.name)) out.push(await runCase(client, dir, c));
  return out;
}

export function summarize(results: CaseResult[]): Summary[] {
  return (['base', 'supporting', 'profile'] as CaseSet[]).flatMap((set) =>
    (['json', 'xml'] as CaseFormat[]).map((format) => {
      const run = results.filter((r) => r.set === set && r.format === format && !r.skipped);
      return { set, format, run: run.length, agree: run.filter((r) => r.agrees).length, exact: run.filter((r) => r.exact).length };
    }),
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const dir = arg('cases');
  const base = arg('base') ?? process.env.BASE_URL;
  if (!dir || !base) {
    console.error('usage: npm run conformance:validator -- --cases DIR [--base URL] [--token TOKEN] [--only REGEX] [--verbose]');
    process.exit(2);
  }
  const only = arg('only');
  const results = await runCases({ base, token: arg('token') ?? process.env.TOKEN }, dir, only ? new RegExp(only) : undefined);
  if (args.includes('--verbose')) {
    for (const r of results) {
      console.log(r.skipped ? `skip  ${r.name} (${r.format}): ${r.skipped}` : `${r.agrees ? 'agree' : 'DIFF '} ${r.name} (${r.format}, ${r.set}): expected ${r.expectedErrors} error(s), got ${r.errors}`);
    }
  }
  const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)} %` : '-');
  for (const s of summarize(results)) console.log(`${s.set.padEnd(10)} ${s.format.padEnd(4)} run ${String(s.run).padStart(4)}  agree ${pct(s.agree, s.run).padStart(7)}  same error count ${pct(s.exact, s.run).padStart(7)}`);
  console.log(`not run: ${results.filter((r) => r.skipped).length} (not R4, IG packages, other modules, validator settings, missing files, no reference outcome)`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

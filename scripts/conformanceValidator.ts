/**
 * Runs FHIR validator test cases, in the manifest format of the public HL7 test cases
 * (github.com/FHIR/fhir-test-cases, folder `validator/`, `manifest.json`), against a
 * running server's `$validate`, and prints how often its verdict agrees with the reference
 * validator's, per set:
 *
 *   npm run conformance:validator -- --cases DIR [--base URL] [--token TOKEN] [--verbose]
 *
 * DIR holds a `manifest.json` and the files it names (a clone of fhir-test-cases/validator
 * is such a directory: `git clone --depth 1 https://github.com/FHIR/fhir-test-cases` then
 * `--cases fhir-test-cases/validator`; the cases are not part of this project). The base
 * URL defaults to BASE_URL, the token to TOKEN (an administrator token: supporting
 * definitions are written to the server, `npm run token -- --admin`).
 *
 * Only R4 cases (`"version": "4.0"`) in JSON are run. A case is in the set `base` (no
 * supporting files), `supporting` (it loads StructureDefinitions, ValueSets, CodeSystems or
 * Questionnaires first) or `profile` (it is validated against a profile); a case that needs
 * IG packages, or supporting files of other kinds, is counted as not run. The expected
 * outcome is the reference (`java`) one; the server agrees when both find errors or both
 * find none, and matches exactly when the error counts are equal too. The manifest records
 * that outcome as an error count (`java.errorCount`, older manifests) or as the reference
 * validator's OperationOutcome (`java.outcome`, current ones): both are read.
 */
import fs from 'node:fs';
import path from 'node:path';

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
  profile?: { source?: string; supporting?: string[]; java?: Expectation };
  java?: Expectation;
  module?: string;
}

export type CaseSet = 'base' | 'supporting' | 'profile';

export interface CaseResult {
  name: string;
  set: CaseSet;
  /** why the case was not run */
  skipped?: string;
  expectedErrors?: number;
  errors?: number;
  agrees?: boolean;
  exact?: boolean;
}

export interface Summary {
  set: CaseSet;
  run: number;
  agree: number;
  exact: number;
}

export function caseSet(c: ValidatorCase): CaseSet {
  if (c.profile?.source) return 'profile';
  return (c.supporting?.length ?? 0) + (c.profiles?.length ?? 0) > 0 ? 'supporting' : 'base';
}

/** Why a case cannot be run here, or undefined. */
export function notRunnable(c: ValidatorCase, dir: string): string | undefined {
  if (c.version !== '4.0') return `FHIR version ${c.version ?? '5.0'}`;
  if (!c.file.endsWith('.json')) return 'not JSON';
  if (c.packages?.length) return 'needs IG packages';
  if (expectedErrors(c.profile?.source ? c.profile.java : c.java) === undefined) return 'no reference outcome';
  for (const f of [c.file, ...supportingFiles(c), ...(c.profile?.source ? [c.profile.source] : [])]) {
    if (!fs.existsSync(path.join(dir, f))) return `missing file ${f}`;
  }
  for (const f of supportingFiles(c)) {
    if (!f.endsWith('.json')) return `supporting file ${f} is not JSON`;
    const type = readJson(path.join(dir, f))?.resourceType;
    if (!CONFORMANCE_TYPES.has(type) && type !== 'Bundle') return `supporting ${type ?? 'file'} cannot be loaded`;
  }
  return undefined;
}

function supportingFiles(c: ValidatorCase): string[] {
  return [...(c.supporting ?? []), ...(c.profiles ?? []), ...(c.profile?.supporting ?? [])];
}

function readJson(file: string): any {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Conformance resources of a supporting file (a Bundle of them, or one). */
function conformanceResources(doc: any): any[] {
  if (doc?.resourceType === 'Bundle') return (doc.entry ?? []).map((e: any) => e?.resource).filter((r: any) => CONFORMANCE_TYPES.has(r?.resourceType));
  return CONFORMANCE_TYPES.has(doc?.resourceType) ? [doc] : [];
}

interface Client {
  base: string;
  token?: string;
}

async function call(client: Client, method: string, url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${client.base.replace(/\/$/, '')}/${url}`, {
    method,
    headers: {
      accept: 'application/fhir+json',
      ...(body !== undefined ? { 'content-type': 'application/fhir+json' } : {}),
      ...(client.token ? { authorization: `Bearer ${client.token}` } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed };
}

/** Writes a definition by its canonical URL (created, or replacing the one of that URL). */
async function load(client: Client, resource: any): Promise<void> {
  const { id: _id, meta: _meta, ...body } = resource;
  const where = typeof body.url === 'string' ? `${body.resourceType}?url=${encodeURIComponent(body.url)}${body.version ? `&version=${encodeURIComponent(body.version)}` : ''}` : body.resourceType;
  const res = typeof body.url === 'string' ? await call(client, 'PUT', where, body) : await call(client, 'POST', where, body);
  if (res.status >= 300) throw new Error(`loading ${body.resourceType} ${body.url ?? ''} answered ${res.status}: ${JSON.stringify(res.body?.issue?.[0]?.diagnostics ?? '')}`);
}

const errorCount = (oo: any): number => (Array.isArray(oo?.issue) ? oo.issue.filter((i: any) => i?.severity === 'error' || i?.severity === 'fatal').length : 0);

export async function runCase(client: Client, dir: string, c: ValidatorCase): Promise<CaseResult> {
  const set = caseSet(c);
  const why = notRunnable(c, dir);
  if (why) return { name: c.name, set, skipped: why };
  try {
    for (const f of supportingFiles(c)) for (const r of conformanceResources(readJson(path.join(dir, f)))) await load(client, r);
    let query = '';
    if (c.profile?.source) {
      const profile = readJson(path.join(dir, c.profile.source));
      if (profile?.resourceType !== 'StructureDefinition' || typeof profile.url !== 'string') return { name: c.name, set, skipped: 'the profile is not a StructureDefinition' };
      await load(client, profile);
      query = `?profile=${encodeURIComponent(profile.url)}`;
    }
    const resource = readJson(path.join(dir, c.file));
    if (!resource || typeof resource.resourceType !== 'string') return { name: c.name, set, skipped: 'not a resource' };
    const res = await call(client, 'POST', `$validate${query}`, { resourceType: 'Parameters', parameter: [{ name: 'resource', resource }] });
    const expected = expectedErrors(c.profile?.source ? c.profile.java : c.java)!;
    // a validation the server cannot do (4xx) counts as "errors found"
    const errors = res.status === 200 ? errorCount(res.body) : Math.max(1, errorCount(res.body));
    return { name: c.name, set, expectedErrors: expected, errors, agrees: expected > 0 === errors > 0, exact: expected === errors };
  } catch (e) {
    return { name: c.name, set, skipped: (e as Error).message };
  }
}

export async function runCases(client: Client, dir: string, filter?: RegExp): Promise<CaseResult[]> {
  const manifest = readJson(path.join(dir, 'manifest.json'));
  const cases: ValidatorCase[] = Array.isArray(manifest?.['test-cases']) ? manifest['test-cases'] : [];
  const out: CaseResult[] = [];
  for (const c of cases) if (!filter || filter.test(c.name)) out.push(await runCase(client, dir, c));
  return out;
}

export function summarize(results: CaseResult[]): Summary[] {
  return (['base', 'supporting', 'profile'] as CaseSet[]).map((set) => {
    const run = results.filter((r) => r.set === set && !r.skipped);
    return { set, run: run.length, agree: run.filter((r) => r.agrees).length, exact: run.filter((r) => r.exact).length };
  });
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
      console.log(r.skipped ? `skip  ${r.name}: ${r.skipped}` : `${r.agrees ? 'agree' : 'DIFF '} ${r.name}: expected ${r.expectedErrors} error(s), got ${r.errors}`);
    }
  }
  const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(1)} %` : '-');
  for (const s of summarize(results)) console.log(`${s.set.padEnd(10)} run ${String(s.run).padStart(4)}  agree ${pct(s.agree, s.run).padStart(7)}  same error count ${pct(s.exact, s.run).padStart(7)}`);
  console.log(`not run: ${results.filter((r) => r.skipped).length} (not R4, not JSON, packages, no reference outcome)`);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

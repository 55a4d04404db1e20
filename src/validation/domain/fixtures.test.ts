/**
 * The domain part of fixtures/profiles/expected.json: valid fixtures raise no domain
 * issue; each invalid fixture raises exactly the domain issues listed for it.
 * (The profile part is for the validation engine's own tests.)
 */
import * as fs from 'fs';
import * as path from 'path';
import { runDomainChecks } from './checks';

const DIR = path.resolve(__dirname, '../../../fixtures/profiles');
const expected = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8'));
const load = (file: string) => JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
const domainIssues = (resource: any) =>
  runDomainChecks(resource).map((i) => ({ key: i.diagnostics.slice(0, i.diagnostics.indexOf(':')), expression: i.expression?.[0] }));

describe('fixtures/profiles vs domain checks', () => {
  it('lists every fixture file in expected.json', () => {
    const listed = new Set([...expected.valid, ...expected.invalid].map((f: any) => f.file));
    for (const sub of ['valid', 'invalid']) {
      for (const f of fs.readdirSync(path.join(DIR, sub))) expect(listed).toContain(`${sub}/${f}`);
    }
    expect(listed.size).toBe(expected.valid.length + expected.invalid.length);
  });

  const valid: [string][] = expected.valid.map((f: any) => [f.file]);
  const invalid: [string, any][] = expected.invalid.map((f: any) => [f.file, f]);

  it.each(valid)('%s raises no domain issue', (file) => {
    expect(domainIssues(load(file))).toEqual([]);
  });

  it.each(invalid)('%s raises exactly its expected domain issues', (file, entry) => {
    const want = entry.errors.filter((e: any) => e.kind === 'domain').map((e: any) => ({ key: e.key, expression: e.expression }));
    expect(domainIssues(load(file))).toEqual(want);
  });

  it('every fixture claims one of our profiles', () => {
    for (const f of [...expected.valid, ...expected.invalid]) {
      const r = load(f.file);
      expect(r.meta.profile).toEqual([f.profile]);
      expect(f.profile.startsWith('https://fhir.dmp.esante.example/StructureDefinition/')).toBe(true);
    }
  });
});

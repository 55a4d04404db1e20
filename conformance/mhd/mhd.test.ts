import { startTarget, Target } from '../harness';
import { CheckResult, defaultInputs, repositoryRoot, runMhdSuite } from './suite';

/**
 * The MHD black-box suite against the embedded server, as the unrestricted test client
 * (or against FHIR_BASE_URL with FHIR_TOKEN when set, like the other HTTP suites).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

it('passes every check of the MHD conformance suite', async () => {
  const lines: string[] = [];
  const { passed, results } = await runMhdSuite({ base: t.base, token: t.token, ...defaultInputs(repositoryRoot(__dirname)), log: (line) => lines.push(line) });
  const failures = results.filter((r: CheckResult) => !r.ok).map((r) => `${r.name} (${r.why})`);
  expect(failures).toEqual([]);
  expect(passed).toBeGreaterThan(0);
  expect(lines[lines.length - 1]).toBe(`${passed} passed, 0 failed`);
});

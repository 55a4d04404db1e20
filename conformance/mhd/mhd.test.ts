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
  // every flow ran: a check left out silently would pass too
  const names = results.map((r: CheckResult) => r.name);
  for (const flow of [
    /^ITI-65 provide Bundle .*transaction-response/,
    /^ITI-65 provide Bundle .*same order/,
    /^ITI-68 provide Bundle /,
    /^ITI-67 .* by patient$/,
    /^ITI-67 .* by patient\.identifier \(INS\)$/,
    /^ITI-66 /,
    /^ITI-65 a document masterIdentifier already stored is refused/,
    /^ITI-65 a SubmissionSet identifier already stored is refused/,
    /^ITI-67 by patient and status=current/,
    /^ITI-65 a hash that is not the content’s is refused/,
    /^ITI-105 simplified publish/,
    /^ITI-105 replacement/,
    /^ITI-65 with a Folder: stored/,
    /^ITI-65 a Folder without designationType/,
    /^PDSm PATCH of an element other than/,
    /^PDSm archive by conditional PATCH/,
    /^PDSm visibility label by conditional PATCH/,
    /^PDSm entered-in-error by PATCH is refused/,
    /^deletion by its depositor/,
    /^ITI-65 fixture mhd\//,
    /^ITI-65 fixture pdsm\/.*superseded$/,
  ]) expect(names.filter((n) => flow.test(n))).not.toEqual([]);
  expect(lines[lines.length - 1]).toBe(`${passed} passed, 0 failed`);
});

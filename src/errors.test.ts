import { BadRequest, capIssues, FhirError, Issue, MAX_OUTCOME_ISSUES, operationOutcome, Unprocessable } from './errors';

const issue = (severity: Issue['severity'], n: number): Issue => ({ severity, code: 'invalid', diagnostics: `${severity} ${n}` });

describe('the issues of one OperationOutcome', () => {
  it('are kept as they are up to the cap', () => {
    const issues = Array.from({ length: MAX_OUTCOME_ISSUES }, (_, n) => issue('warning', n));
    expect(capIssues(issues)).toBe(issues);
    expect(operationOutcome(issues).issue).toHaveLength(MAX_OUTCOME_ISSUES);
  });

  it('past the cap, are the most severe first, in their order, and a last issue saying how many were left out', () => {
    const issues = [
      ...Array.from({ length: 150 }, (_, n) => issue('warning', n)),
      ...Array.from({ length: 60 }, (_, n) => issue('error', n)),
      issue('fatal', 0),
      issue('information', 0),
    ];
    const kept = capIssues(issues);
    expect(kept).toHaveLength(MAX_OUTCOME_ISSUES);
    expect(kept[0].diagnostics).toBe('fatal 0');
    expect(kept.slice(1, 61).map((i) => i.diagnostics)).toEqual(Array.from({ length: 60 }, (_, n) => `error ${n}`));
    expect(kept.slice(61, 99).map((i) => i.diagnostics)).toEqual(Array.from({ length: 38 }, (_, n) => `warning ${n}`));
    expect(kept[99]).toEqual({ severity: 'information', code: 'informational', diagnostics: `and ${212 - 99} more issues (an OperationOutcome here carries at most 100)` });
    // capping again changes nothing
    expect(capIssues(kept)).toBe(kept);
  });

  it('are capped in every error and every outcome, whatever builds them', () => {
    const many = Array.from({ length: 300_000 }, (_, n) => issue('error', n));
    const error = new Unprocessable(many);
    expect(error.issues).toHaveLength(MAX_OUTCOME_ISSUES);
    expect(error.message.length).toBeLessThan(10_000);
    expect(new FhirError(400, many).issues.at(-1)!.diagnostics).toMatch(/^and 299901 more issues/);
    expect(operationOutcome(many).issue).toHaveLength(MAX_OUTCOME_ISSUES);
    expect(new BadRequest('one').issues).toHaveLength(1);
  });
});

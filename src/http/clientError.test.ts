import { clientErrorAnswer, clientErrorResponse } from './clientError';

describe('the answer to a request that cannot be parsed', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431, 'too-costly', /larger than 16384 bytes/],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'timeout', /not received in time/],
    ['HPE_INVALID_HEADER_TOKEN', 400, 'structure', /not valid HTTP\/1\.1.*HPE_INVALID_HEADER_TOKEN/],
    ['HPE_INVALID_METHOD', 400, 'structure', /HPE_INVALID_METHOD/],
    [undefined, 400, 'structure', /not valid HTTP\/1\.1 and cannot be read$/],
  ])('%s: %i %s', (code, status, issueCode, diagnostics) => {
    const answer = clientErrorAnswer(code, 16384);
    expect(answer.status).toBe(status);
    expect(answer.code).toBe(issueCode);
    expect(answer.diagnostics).toMatch(diagnostics);
  });

  it('is a complete HTTP/1.1 response carrying an OperationOutcome, closing the connection', () => {
    const text = clientErrorResponse(clientErrorAnswer('HPE_HEADER_OVERFLOW', 8192));
    const [head, body] = text.split('\r\n\r\n');
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(lines).toContain('Connection: close');
    expect(lines).toContain('Content-Type: application/fhir+json; charset=utf-8');
    expect(lines).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    // the headers every answer carries (docs/decisions/006-content-on-the-api-origin.md)
    expect(lines).toContain('Cache-Control: no-store');
    expect(lines).toContain('Referrer-Policy: no-referrer');
    expect(JSON.parse(body)).toEqual({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'too-costly', diagnostics: "The request's headers are larger than 8192 bytes" }],
    });
  });
});

import { FhirError, Forbidden, operationOutcome, Unauthorized } from './errors';

describe('Unauthorized and Forbidden', () => {
  it('401 without credentials: a bare Bearer challenge', () => {
    const e = new Unauthorized('Authentication required', false);
    expect(e).toBeInstanceOf(FhirError);
    expect(e.status).toBe(401);
    expect(e.headers).toEqual({ 'WWW-Authenticate': 'Bearer' });
    expect(operationOutcome(e.issues)).toEqual({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'login', diagnostics: 'Authentication required' }],
    });
  });

  it('401 for a refused token: invalid_token with the reason, kept a valid quoted-string', () => {
    const e = new Unauthorized('The token\'s "fhirUser" claim is bad \\ and\r\nlong: é');
    expect(e.headers['WWW-Authenticate']).toBe('Bearer error="invalid_token", error_description="The token\'s  fhirUser  claim is bad   and  long:  "');
    expect(e.issues[0].diagnostics).toBe('The token\'s "fhirUser" claim is bad \\ and\r\nlong: é');
  });

  it('403: forbidden, with an insufficient_scope challenge when a scope is missing', () => {
    const plain = new Forbidden('No access consent for this patient');
    expect(plain.status).toBe(403);
    expect(plain.headers).toEqual({});
    expect(plain.issues[0]).toMatchObject({ code: 'forbidden', diagnostics: 'No access consent for this patient' });
    const scoped = new Forbidden('The token\'s scopes do not allow creating DocumentReference', 'user/DocumentReference.c');
    expect(scoped.headers).toEqual({ 'WWW-Authenticate': 'Bearer error="insufficient_scope", scope="user/DocumentReference.c"' });
  });
});

/**
 * A client certificate is an ambient credential: a browser that holds one (a CPS card's
 * middleware, a certificate in the professional's store) presents it to this server on
 * every connection, whichever page caused the request. Accepted alone from any page, it
 * would let another site make the professional's browser read records (each read audited in
 * their name) or write through a form post, a request forgery that a bearer token, which a
 * page must add itself, does not allow.
 *
 * So the certificate alone authenticates only requests no other site caused: clients that
 * are not browsers (no Origin, no Sec-Fetch-Site), and a browser request the user made
 * directly (`Sec-Fetch-Site: none`, a typed URL or a bookmark) or that came from this
 * origin (`same-origin`; this origin serves no page that runs: every answer is sandboxed).
 * Cross-origin browser applications authenticate with a bearer token: CORS here offers no
 * credentials mode, so their certificate-authenticated answers would be unreadable anyway.
 *
 * Returns why the certificate cannot be used for this request, or undefined when it can.
 */
export function crossSiteCertificateRefusal(headers: Record<string, string | undefined>): string | undefined {
  const site = headers['sec-fetch-site']?.trim().toLowerCase();
  if (headers.origin !== undefined || (site !== undefined && site !== 'none' && site !== 'same-origin')) {
    return 'A client certificate alone does not authenticate a request that another site caused (Origin or Sec-Fetch-Site says so): send a bearer token';
  }
  return undefined;
}

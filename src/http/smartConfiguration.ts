import type express from 'express';
import smart from '../../conformance/capability/smart-configuration.json';

/**
 * SMART App Launch discovery: `GET [base]/.well-known/smart-configuration`, read by apps
 * before they hold a token, so it asks for none (docs/design ACCESS.md).
 *
 * The document holds only what this server does (the data file says why each OAuth
 * endpoint is absent: the operator's identity providers issue tokens, this server verifies
 * them). A client that needs the authorization server's endpoints gets them from that
 * server's own metadata, which the operator publishes.
 */
export function smartConfiguration(): Record<string, unknown> {
  return structuredClone(smart.document);
}

/** Where the document is served: under the FHIR base (as SMART defines), and at the server root. */
export const SMART_CONFIGURATION_PATHS = ['/fhir/.well-known/smart-configuration', '/.well-known/smart-configuration'] as const;

/** Serves the document (GET and HEAD) at both paths. */
export function serveSmartConfiguration(app: express.Express): void {
  const body = JSON.stringify(smartConfiguration());
  for (const path of SMART_CONFIGURATION_PATHS) {
    app.get(path, (_req, res) => {
      res.status(200).setHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(body);
    });
  }
}

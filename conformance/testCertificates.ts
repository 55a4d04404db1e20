import crypto from 'node:crypto';
import forge from 'node-forge';

/**
 * Certificates made at test time for HTTPS suites: a CA standing for IGC-Santé, a server
 * certificate for localhost, and professionals' client certificates whose subject CN is
 * idNat_PS (`8` + RPPS). RSA keys come from node:crypto (quick); node-forge writes and
 * signs the certificates. No key is committed.
 */
export interface TestCertificate {
  pem: string;
  keyPem: string;
  /** The subject attributes, for issuing certificates under this one. */
  subject: forge.pki.CertificateField[];
}

function rsaKeys(): { publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey; keyPem: string } {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  const forgeKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), keyPem };
}

export function issueCertificate(opts: {
  subject: forge.pki.CertificateField[];
  /** Absent: self-signed. */
  issuer?: TestCertificate;
  ca?: boolean;
  /** A server certificate for these DNS names (and 127.0.0.1). */
  serverNames?: string[];
}): TestCertificate {
  const keys = rsaKeys();
  const cert = forge.pki.createCertificate();
  cert.serialNumber = `01${crypto.randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 86400_000);
  cert.publicKey = keys.publicKey;
  cert.setSubject(opts.subject);
  cert.setIssuer(opts.issuer ? opts.issuer.subject : opts.subject);
  cert.setExtensions(
    opts.ca
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
          { name: 'extKeyUsage', serverAuth: Boolean(opts.serverNames), clientAuth: !opts.serverNames },
          ...(opts.serverNames ? [{ name: 'subjectAltName', altNames: [...opts.serverNames.map((value) => ({ type: 2, value })), { type: 7, ip: '127.0.0.1' }] }] : []),
        ],
  );
  const signer = opts.issuer ? (forge.pki.privateKeyFromPem(opts.issuer.keyPem) as forge.pki.rsa.PrivateKey) : keys.privateKey;
  cert.sign(signer, forge.md.sha256.create());
  return { pem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem, subject: opts.subject };
}

/** A CPS-like subject: CN = idNat_PS (`8` + RPPS), with surname, given name and profession. */
export function professionalSubject(idNat: string): forge.pki.CertificateField[] {
  return [
    { shortName: 'C', value: 'FR' },
    { name: 'title', type: '2.5.4.12', value: 'Medecin' },
    { shortName: 'CN', value: idNat },
    { name: 'surname', type: '2.5.4.4', value: 'MEDECIN' },
    { name: 'givenName', type: '2.5.4.42', value: 'ANNE' },
  ];
}

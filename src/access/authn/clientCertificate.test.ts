import crypto from 'node:crypto';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import { FhirError, Unauthorized } from '../../errors';
import { CertificateIdentity, identifyClientCertificate, identityFromCertificate, luhnValid } from './clientCertificate';

/*
 * Certificates are generated here, at test time: a CA standing for IGC-Santé, client
 * certificates shaped like CPS ones, and a real TLS handshake. No key is committed.
 */
const { asn1, pki } = forge;

type Rdn = Array<[oid: string, value: string, type?: number]>;
interface Issued {
  pem: string;
  der: Buffer;
  keyPem: string;
}

const OID = { C: '2.5.4.6', O: '2.5.4.10', OU: '2.5.4.11', CN: '2.5.4.3', SN: '2.5.4.4', GN: '2.5.4.42', title: '2.5.4.12', serialNumber: '2.5.4.5' };

/** sha256WithRSAEncryption or ecdsa-with-SHA256, after the signing key. */
function signatureAlgorithm(signer: crypto.KeyObject): forge.asn1.Asn1 {
  return signer.asymmetricKeyType === 'rsa'
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(pki.oids.sha256WithRSAEncryption).getBytes()),
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
      ])
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer('1.2.840.10045.4.3.2').getBytes())]);
}

function ecKey() {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function rsaKey() {
  return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
}
// forge wants an RSA key of its own to build the certificate; the real one replaces it.
let placeholderKey: forge.pki.rsa.PublicKey | undefined;

function nameAsn1(rdns: Rdn[]): forge.asn1.Asn1 {
  return asn1.create(
    asn1.Class.UNIVERSAL,
    asn1.Type.SEQUENCE,
    true,
    rdns.map((rdn) =>
      asn1.create(
        asn1.Class.UNIVERSAL,
        asn1.Type.SET,
        true,
        rdn.map(([oid, value, type = asn1.Type.UTF8]) =>
          asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
            asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes()),
            asn1.create(
              asn1.Class.UNIVERSAL,
              type,
              false,
              type === asn1.Type.UTF8
                ? forge.util.encodeUtf8(value)
                : type === asn1.Type.BMPSTRING
                  ? Array.from(value, (c) => String.fromCharCode(c.charCodeAt(0) >> 8, c.charCodeAt(0) & 0xff)).join('')
                  : value,
            ),
          ]),
        ),
      ),
    ),
  );
}

/**
 * A certificate signed by `issuer` (self-signed when absent). node-forge builds it; the
 * subject is written as raw ASN.1 (forge writes one attribute per RDN, and CPS subjects have
 * a multi-valued RDN) and the public key as node exports it (forge only knows RSA keys).
 */
function issue(opts: { subject: Rdn[]; issuer?: { cert: Issued; subject: Rdn[] }; ca?: boolean; key?: crypto.KeyPairKeyObjectResult; serverName?: string; days?: number }): Issued {
  // CAs get RSA keys (as IGC-Santé has); other certificates EC keys unless told, which are quick to make.
  const key = opts.key ?? (opts.ca ? rsaKey() : ecKey());
  const signer = opts.issuer ? crypto.createPrivateKey(opts.issuer.cert.keyPem) : key.privateKey;
  const cert = pki.createCertificate();
  cert.serialNumber = crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '1');
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + (opts.days ?? 1) * 86400_000);
  placeholderKey ??= pki.publicKeyFromPem(rsaKey().publicKey.export({ type: 'spki', format: 'pem' }) as string);
  cert.publicKey = placeholderKey;
  cert.setSubject([{ shortName: 'CN', value: 'placeholder' }]);
  cert.setIssuer([{ shortName: 'CN', value: 'placeholder' }]);
  const extensions: object[] = opts.ca
    ? [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ]
    : [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', clientAuth: !opts.serverName, serverAuth: Boolean(opts.serverName) },
        ...(opts.serverName ? [{ name: 'subjectAltName', altNames: [{ type: 7, ip: opts.serverName }] }] : []),
      ];
  cert.setExtensions(extensions);
  // forge needs an algorithm to write the TBS; the signer's own replaces it below.
  cert.siginfo.algorithmOid = pki.oids.sha256WithRSAEncryption;
  // Part of forge's x509 API, missing from its type definitions.
  const tbs = (pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const fields = tbs.value as forge.asn1.Asn1[];
  // [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, [3] extensions
  fields[2] = signatureAlgorithm(signer);
  fields[3] = nameAsn1(opts.issuer ? opts.issuer.subject : opts.subject);
  fields[5] = nameAsn1(opts.subject);
  fields[6] = asn1.fromDer(forge.util.createBuffer((key.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('binary')));
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = crypto.sign('sha256', tbsDer, signer);
  const certAsn1 = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    signatureAlgorithm(signer),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(0) + signature.toString('binary')),
  ]);
  const der = Buffer.from(asn1.toDer(certAsn1).getBytes(), 'binary');
  return {
    der,
    pem: forge.pem.encode({ type: 'CERTIFICATE', body: der.toString('binary') }),
    keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** A CPS-like subject: SN+CN+GN in one RDN, then title and C (RFC 4514: `SN=…+CN=…+GN=…,title=…,C=FR`). */
const cpsSubject = (cn: string, title = 'Médecin'): Rdn[] => [
  [[OID.C, 'FR', asn1.Type.PRINTABLESTRING]],
  [[OID.title, title]],
  [
    [OID.SN, 'MEDECIN0087058'],
    [OID.CN, cn, asn1.Type.PRINTABLESTRING],
    [OID.GN, 'ANNE'],
  ],
];

describe('identityFromCertificate', () => {
  const caSubject: Rdn[] = [[[OID.C, 'FR']], [[OID.O, 'TEST IGC-SANTE']], [[OID.CN, 'TEST AC IGC-SANTE FORT PERSONNES']]];
  let ca: Issued;
  beforeAll(() => {
    ca = issue({ subject: caSubject, ca: true, days: 30 });
  });
  const signedByCa = (subject: Rdn[], key?: crypto.KeyPairKeyObjectResult) => issue({ subject, issuer: { cert: ca, subject: caSubject }, key }).der;

  it('reads the RPPS number from a CPS subject (multi-valued RDN)', () => {
    // CPS cards hold RSA keys.
    expect(identityFromCertificate(signedByCa(cpsSubject('899700870589'), rsaKey()))).toEqual<CertificateIdentity>({
      rpps: '99700870589',
      idNat: '899700870589',
      subject: 'SN=MEDECIN0087058+CN=899700870589+GN=ANNE,title=Médecin,C=FR',
    });
  });

  it('reads the CN wherever it sits, in any string type, with an EC key too', () => {
    const ec = ecKey();
    const subject: Rdn[] = [[[OID.C, 'FR']], [[OID.CN, '899700075122', asn1.Type.BMPSTRING]], [[OID.SN, 'PHARMACIEN, CHEF+ADJOINT']]];
    expect(identityFromCertificate(signedByCa(subject, ec))).toEqual({
      rpps: '99700075122',
      idNat: '899700075122',
      subject: 'SN=PHARMACIEN\\, CHEF\\+ADJOINT,CN=899700075122,C=FR',
    });
  });

  it.each<[string, Rdn[], RegExp]>([
    ['an ADELI number', cpsSubject('00B7010446', 'Masseur-Kinésithérapeute'), /carries an ADELI number/],
    ['a structure certificate', [[[OID.C, 'FR']], [[OID.O, 'CABINET M DOC0036790']], [[OID.OU, '499700367909006']], [[OID.CN, 'DRIMbox']]], /carries no RPPS identifier/],
    ['an RPPS number in OU or serialNumber only', [[[OID.C, 'FR']], [[OID.OU, '899700870589']], [[OID.serialNumber, '899700870589']], [[OID.CN, 'ANNE MEDECIN']]], /carries no RPPS identifier/],
    ['an RPPS number with a suffix', cpsSubject('899700870589/CPS'), /carries no RPPS identifier/],
    ['an RPPS number without its prefix', cpsSubject('99700870589'), /carries no RPPS identifier/],
    ['a wrong check digit', cpsSubject('899700870588'), /fails its check digit/],
    ['no CN', [[[OID.C, 'FR']], [[OID.SN, 'X']]], /has 0 CN attributes/],
    ['two CNs', [[[OID.CN, '899700870589']], [[OID.CN, '899700075122']]], /has 2 CN attributes/],
  ])('refuses %s', (_name, subject, message) => {
    const der = signedByCa(subject);
    expect(() => identityFromCertificate(der)).toThrow(Unauthorized);
    expect(() => identityFromCertificate(der)).toThrow(message);
  });

  it('refuses bytes that are not a certificate', () => {
    expect(() => identityFromCertificate(Buffer.from('not a certificate'))).toThrow(/cannot be read/);
    const truncated = signedByCa(cpsSubject('899700870589')).subarray(0, 200);
    expect(() => identityFromCertificate(truncated)).toThrow(/cannot be read/);
  });

  it.each([
    ['99700870589', true],
    ['99700218896', true],
    ['10003421533', true],
    ['99700870588', false],
    ['10003421536', false],
  ])('Luhn key of RPPS %s: %s', (rpps, valid) => {
    expect(luhnValid(rpps)).toBe(valid);
  });
});

describe('identifyClientCertificate over a real TLS connection', () => {
  const caSubject: Rdn[] = [[[OID.C, 'FR']], [[OID.CN, 'TEST AC CLIENTS']]];
  const rogueSubject: Rdn[] = [[[OID.C, 'FR']], [[OID.CN, 'ROGUE AC']]];
  let ca: Issued;
  let server: tls.Server;
  let port: number;
  let onConnection: (socket: tls.TLSSocket) => void;

  beforeAll(async () => {
    ca = issue({ subject: caSubject, ca: true, days: 30 });
    const serverCert = issue({ subject: [[[OID.CN, '127.0.0.1']]], issuer: { cert: ca, subject: caSubject }, serverName: '127.0.0.1' });
    server = tls.createServer(
      // Client certificates are asked for but not required: a token-only client still connects,
      // and a certificate that does not verify is refused by the application with a 401.
      { key: serverCert.keyPem, cert: serverCert.pem, ca: ca.pem, requestCert: true, rejectUnauthorized: false },
      (socket) => onConnection(socket),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Connects with the given client certificate; returns what the server side identified. */
  function connect(client?: Issued): Promise<CertificateIdentity | undefined | FhirError> {
    return new Promise((resolve, reject) => {
      onConnection = (socket) => {
        try {
          resolve(identifyClientCertificate(socket));
        } catch (e) {
          if (e instanceof FhirError) resolve(e);
          else reject(e);
        }
        socket.end();
      };
      const s = tls.connect({ host: '127.0.0.1', port, ca: ca.pem, ...(client ? { cert: client.pem, key: client.keyPem } : {}) }, () => s.end());
      s.on('error', () => undefined);
    });
  }

  it('identifies a professional whose certificate the client CA issued', async () => {
    const client = issue({ subject: cpsSubject('899700870589'), issuer: { cert: ca, subject: caSubject } });
    await expect(connect(client)).resolves.toMatchObject({ rpps: '99700870589' });
  });

  it('is undefined when the client presents no certificate (the token decides)', async () => {
    await expect(connect()).resolves.toBeUndefined();
  });

  it('refuses a certificate from a CA the server does not trust', async () => {
    const rogueCa = issue({ subject: rogueSubject, ca: true });
    const forged = issue({ subject: cpsSubject('899700870589'), issuer: { cert: rogueCa, subject: rogueSubject } });
    const result = await connect(forged);
    expect(result).toBeInstanceOf(Unauthorized);
    expect((result as FhirError).status).toBe(401);
    expect((result as FhirError).message).toMatch(/not trusted by this server \(UNABLE_TO_VERIFY_LEAF_SIGNATURE|not trusted by this server \(UNABLE_TO_GET_ISSUER_CERT/);
  });

  it('refuses a self-signed certificate naming a real RPPS number', async () => {
    const selfSigned = issue({ subject: cpsSubject('899700870589') });
    const result = await connect(selfSigned);
    expect(result).toBeInstanceOf(Unauthorized);
    expect((result as FhirError).message).toMatch(/not trusted by this server/);
  });
});

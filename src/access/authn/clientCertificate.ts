import type { PeerCertificate } from 'node:tls';
import forge from 'node-forge';
import { Unauthorized } from '../../errors';
import { luhnValid } from '../../validation/domain/identifiers';

/**
 * Health-professional client certificates (CPS cards and IGC-Santé personal certificates)
 * mapped to the professional's RPPS number (docs/decisions/007-authentication.md).
 *
 * IGC-Santé puts the professional's national identifier (idNat_PS) in the subject's CN,
 * inside a multi-valued RDN: `SN=<surname>+CN=899700870589+GN=<given name>, title=Médecin, C=FR`.
 * idNat_PS is a type prefix (TRE_G08) followed by the identifier: `8` + the 11-digit RPPS
 * number, `0` + ADELI; structures' certificates carry theirs in OU. Only the RPPS form is
 * mapped, from CN alone: reading other attributes would let another template be taken for
 * a professional.
 */
export interface CertificateIdentity {
  /** The 11-digit RPPS number. */
  rpps: string;
  /** idNat_PS as the certificate carries it: `8` + RPPS. */
  idNat: string;
  /** The subject DN (RFC 4514 order), for logs and audit. */
  subject: string;
}

/** What the identification needs of a TLS socket (node:tls TLSSocket). */
export interface ClientTlsSocket {
  authorized: boolean;
  authorizationError?: Error | string | null;
  getPeerCertificate(detailed?: boolean): PeerCertificate | Record<string, never>;
}

const OID_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.42': 'GN',
  '1.2.840.113549.1.9.1': 'emailAddress',
};
const CN = '2.5.4.3';

interface Attribute {
  oid: string;
  value: string;
}

/**
 * The identity of the verified client certificate on this connection; undefined when the
 * client presented none. A certificate that was presented but did not verify is refused:
 * ignoring it would turn a failed certificate login into an anonymous request.
 */
export function identifyClientCertificate(socket: ClientTlsSocket): CertificateIdentity | undefined {
  const peer = socket.getPeerCertificate(false);
  if (!peer || !('raw' in peer) || !peer.raw) return undefined;
  if (!socket.authorized) {
    const reason = socket.authorizationError ? String((socket.authorizationError as { code?: string }).code ?? socket.authorizationError) : 'unknown reason';
    throw new Unauthorized(`The client certificate is not trusted by this server (${reason.replace(/[^A-Za-z0-9_ :.-]/g, '')})`, false);
  }
  return identityFromCertificate(peer.raw);
}

/** The RPPS identity in a (verified) certificate, given as DER. */
export function identityFromCertificate(der: Buffer | Uint8Array): CertificateIdentity {
  const rdns = subjectOf(der);
  const subject = rdns
    .slice()
    .reverse()
    .map((rdn) => rdn.map((a) => `${OID_NAMES[a.oid] ?? a.oid}=${escapeDnValue(a.value)}`).join('+'))
    .join(',');
  const cns = rdns.flat().filter((a) => a.oid === CN);
  if (cns.length !== 1) throw new Unauthorized(`The client certificate subject has ${cns.length} CN attributes; a professional's certificate has exactly one`, false);
  const idNat = cns[0].value;
  if (/^0[0-9A-Za-z]{9}$/.test(idNat)) {
    throw new Unauthorized('The client certificate carries an ADELI number; professionals are identified by their RPPS number here', false);
  }
  const m = /^8(\d{11})$/.exec(idNat);
  if (!m) throw new Unauthorized('The client certificate carries no RPPS identifier (CN = 8 followed by the 11-digit RPPS number)', false);
  if (!luhnValid(m[1])) throw new Unauthorized('The RPPS number in the client certificate fails its check digit', false);
  return { rpps: m[1], idNat, subject };
}

/** The subject as its RDNs (each a set of attributes), in certificate order. */
function subjectOf(der: Buffer | Uint8Array): Attribute[][] {
  let tbs: forge.asn1.Asn1;
  try {
    const cert = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(der).toString('binary')), true);
    tbs = (cert.value as forge.asn1.Asn1[])[0];
    const fields = tbs.value as forge.asn1.Asn1[];
    // TBSCertificate: [0] version (optional), serialNumber, signature, issuer, validity, subject, …
    const hasVersion = fields[0].tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && fields[0].type === 0;
    const subject = fields[hasVersion ? 5 : 4];
    if (subject.type !== forge.asn1.Type.SEQUENCE) throw new Error('subject');
    return (subject.value as forge.asn1.Asn1[]).map((set) => {
      if (set.type !== forge.asn1.Type.SET) throw new Error('rdn');
      return (set.value as forge.asn1.Asn1[]).map((atv) => {
        const [type, value] = atv.value as forge.asn1.Asn1[];
        return { oid: forge.asn1.derToOid(forge.util.createBuffer(type.value as string)), value: decodeString(value) };
      });
    });
  } catch {
    throw new Unauthorized('The client certificate cannot be read', false);
  }
}

function decodeString(node: forge.asn1.Asn1): string {
  const bytes = node.value;
  if (typeof bytes !== 'string') throw new Error('constructed string');
  switch (node.type) {
    case forge.asn1.Type.UTF8:
      return forge.util.decodeUtf8(bytes);
    case forge.asn1.Type.BMPSTRING: {
      // UCS-2, big-endian.
      let s = '';
      for (let i = 0; i + 1 < bytes.length; i += 2) s += String.fromCharCode((bytes.charCodeAt(i) << 8) | bytes.charCodeAt(i + 1));
      return s;
    }
    default:
      // PrintableString, IA5String, TeletexString: single bytes.
      return bytes;
  }
}

/** RFC 4514 §2.4 escaping, so a value cannot pose as another attribute in the printed DN. */
function escapeDnValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ')
    .replace(/[\x00-\x1f\x7f]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The RPPS number's last digit is a Luhn key over the other ten (the validator's own check). */
export { luhnValid };

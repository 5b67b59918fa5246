import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { InvalidOptionError } from './errors.js';

/**
 * TLS settings of a client: PEM contents, not file paths (read them with fs.readFileSync). Servers
 * whose certificate a public CA signed need none of it.
 */
export interface TlsOptions {
  /** The CA that signed the server's certificate, trusted in place of the system's CAs. */
  ca?: string | Buffer;
  /** A client certificate, for servers that require one (tls.ca on the server). Needs `key`. */
  cert?: string | Buffer;
  /** The private key of `cert`. */
  key?: string | Buffer;
}

/**
 * Refuses settings no connection could use (half a client certificate, text that is not PEM, a
 * key of another certificate) with the field named: grpc-js would throw a bare OpenSSL code from
 * the constructor, and undici would fail each request.
 */
export function checkTlsOptions(tls: TlsOptions | undefined): void {
  if (tls === undefined) return;
  if (typeof tls !== 'object' || tls === null)
    throw new InvalidOptionError('tls', 'tls must be an object { ca?, cert?, key? }');
  for (const k of ['ca', 'cert', 'key'] as const) {
    const v = tls[k];
    if (v !== undefined && typeof v !== 'string' && !Buffer.isBuffer(v))
      throw new InvalidOptionError(`tls.${k}`, `tls.${k} must be PEM text (a string or a Buffer)`);
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    const [set, missing] = tls.cert === undefined ? ['key', 'cert'] : ['cert', 'key'];
    throw new InvalidOptionError(
      `tls.${missing}`,
      `tls.${set} is set but tls.${missing} is not: a client certificate needs both`,
    );
  }
  if (tls.ca !== undefined) {
    try {
      new X509Certificate(tls.ca);
    } catch (err) {
      throw new InvalidOptionError('tls.ca', `tls.ca is not a PEM certificate: ${(err as Error).message}`, err);
    }
  }
  if (tls.cert !== undefined) {
    try {
      createSecureContext({ cert: tls.cert, key: tls.key! });
    } catch (err) {
      throw new InvalidOptionError(
        'tls.cert',
        `tls.cert and tls.key are not a PEM certificate and its private key: ${(err as Error).message}`,
        err,
      );
    }
  }
}

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * What to do about a TLS failure, from the error code Node's TLS layer gives it; undefined for
 * any other failure. OpenSSL's own words ("self-signed certificate in certificate chain") do
 * not say which setting fixes it.
 */
export function tlsHint(code: unknown): string | undefined {
  if (typeof code !== 'string') return undefined;
  if (UNTRUSTED.has(code))
    return "the server's certificate is not signed by a CA this client trusts: give the CA that signed it (option tls.ca; muster --ca FILE)";
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return "the server's certificate is not issued for this host name or address: connect by a name the certificate lists";
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return "the server's certificate is outside its validity period";
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE') {
    return 'the server requires a client certificate: give one its CA signed (options tls.cert and tls.key; muster --cert FILE --key FILE)';
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' || code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE')
    return 'the server refused this client certificate: it is not signed by the CA the server trusts (its tls.ca)';
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG')
    return 'the server does not speak TLS here: use an http:// URL';
  return undefined;
}

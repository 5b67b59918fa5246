import { createHmac } from 'node:crypto';

/**
 * Verified registration, the protocol between the registry and a provider (docs/security.md).
 * The registry asks
 *
 *   GET http://<host>:<port><path>?challenge=<c>&host=<host>&port=<port>&namespace=<ns>&service=<svc>
 *
 * of the instance it is checking, and the provider answers 200 with `verificationProof(...)` as
 * the body. The proof covers the endpoint as well as the challenge: a provider computes it for
 * its own registered host and port only, so a rogue instance that relays the challenge to a
 * genuine provider gets back a proof for the genuine endpoint, which does not match its own.
 * Namespace and service let a provider registered in several services pick the right secret.
 */
export const VERIFICATION_PARAMS = {
  challenge: 'challenge',
  host: 'host',
  port: 'port',
  namespace: 'namespace',
  service: 'service',
} as const;

/** Versions the proof and keeps the secret's HMACs apart from any other use of it. */
const PROOF_CONTEXT = 'muster-verify-v1';

/**
 * Lowercase hex HMAC-SHA256, keyed with the service's secret (UTF-8), of
 * `muster-verify-v1\n<challenge>\n<host>\n<port>`, where host is exactly as registered.
 */
export function verificationProof(secret: string, challenge: string, host: string, port: number): string {
  return createHmac('sha256', secret).update(`${PROOF_CONTEXT}\n${challenge}\n${host}\n${port}`).digest('hex');
}

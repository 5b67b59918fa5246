import net from 'node:net';
import { Errors } from '../errors.js';
import type {
  InstanceRecord,
  InstanceVerificationRecord,
  ServiceRecord,
  ServiceVerificationSetting,
} from '../model/records.js';
import { UNCHECKED } from '../model/records.js';
import { addressRefusal, type GuardOptions } from '../verify/address-guard.js';
import { PUBLIC_REASONS, publicFailure, type CheckOutcome } from '../verify/verifier.js';
import type { NamingContext } from './naming-context.js';

/** What a verification check looked at: its result counts only if the instance and service still match it. */
export type CheckedTarget = ServiceVerificationSetting & { host: string; port: number };

/**
 * Verified registration's rules in the domain: the state an instance starts in, and a check's
 * outcome written back. The checks themselves run in verify/ (the verification queue).
 */
export class Verification {
  constructor(
    private readonly ctx: NamingContext,
    private readonly addressRules: GuardOptions,
  ) {}

  /**
   * A new instance, a takeover, a move to another endpoint and a retry after a failed or
   * unfinished check start pending in a service with verification; the owner re-registering a
   * verified instance at the same endpoint keeps it verified. A literal address the registry
   * must never connect to is refused here, before anything is written or any socket opened.
   */
  atRegistration(
    svc: ServiceRecord,
    host: string,
    port: number,
    prev: InstanceRecord | undefined,
    owner: boolean,
    now: number,
  ): InstanceVerificationRecord {
    if (!svc.verification) return { ...UNCHECKED };
    if (net.isIP(host) !== 0) {
      const why = addressRefusal(host, this.addressRules);
      if (why !== undefined) {
        this.ctx.metrics.verificationChecks.labels('address_refused').inc();
        throw Errors.verificationAddressRefused(host, why);
      }
    }
    if (prev && owner && prev.host === host && prev.port === port && prev.verification.state !== 'failed') {
      return prev.verification;
    }
    return { state: 'pending', reason: '', at: now };
  }

  /**
   * Writes a check's outcome as the registrant may see it (publicFailure), if it still applies:
   * the instance is still unverified at the endpoint checked, and its service still has the
   * secret and path checked with (otherwise a newer check is due and this one is dropped:
   * 'stale'). A failure repeating the outcome already recorded changes nothing ('unchanged'):
   * no event, no revision.
   */
  async complete(
    id: string,
    checked: CheckedTarget,
    outcome: CheckOutcome,
  ): Promise<'written' | 'unchanged' | 'stale'> {
    return this.ctx.batcher.submit(async (tx) => {
      const cur = await tx.getInstance(id);
      if (!cur || cur.verification.state === 'verified' || cur.host !== checked.host || cur.port !== checked.port)
        return 'stale';
      const svc = await tx.getService(cur.namespace, cur.service);
      const setting = svc?.verification;
      if (!svc || !setting || setting.secret !== checked.secret || setting.path !== checked.path) return 'stale';
      const now = this.ctx.clock.now();
      const next: InstanceRecord = { ...cur, updatedAt: now };
      if (outcome.ok) {
        next.verification = { state: 'verified', reason: '', at: now };
        next.revision = await this.ctx.bump(tx, svc, 'instance.verified', id, { host: cur.host, port: cur.port });
      } else {
        // The registrant learns only whether an answer came; what came (a remote header, a raw
        // error) would make the check a scanner of whatever the registry can reach.
        const kind = publicFailure(outcome.kind);
        const reason = PUBLIC_REASONS[kind];
        if (cur.verification.state === 'failed' && cur.verification.reason === reason) return 'unchanged';
        next.verification = { state: 'failed', reason, at: now };
        next.revision = await this.ctx.bump(tx, svc, 'instance.verification_failed', id, {
          host: cur.host,
          port: cur.port,
          kind,
          reason,
        });
      }
      await tx.putInstance(next, cur);
      return 'written';
    }, this.ctx.instanceHints(id));
  }
}

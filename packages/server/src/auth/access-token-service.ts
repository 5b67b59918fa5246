import type { AccessToken, CreateTokenResponse } from '@muster/api';
import type { WriteBatcher } from '../batch/write-batcher.js';
import type { RequestContext } from '../batch/request-context.js';
import type { Clock } from '../clock.js';
import { Errors, MusterError } from '../errors.js';
import { toWireToken, type TokenRecord } from '../model/records.js';
import { tokenMatches } from '../naming/identity.js';
import { checkName } from '../naming/validate.js';
import type { Store } from '../store/store.js';
import { accessTokenId, newAccessToken } from './access-tokens.js';
import { formatRule, parseRules, type Rule } from './rules.js';

/** Who an access token is, as the guard sees it. */
export interface Principal {
  id: string;
  name: string;
  rules: readonly Rule[];
}

/** The first token, made at first start: its id is fixed so two cluster nodes starting at once make one. */
export const ADMIN_TOKEN_ID = '000000000000';

/**
 * Access tokens: created and revoked through the write batcher like every other write (with an
 * event, so the other nodes of a cluster reload them), and kept in memory, so checking a token
 * costs a map lookup and one hash, never a store read.
 */
export class AccessTokenService {
  private byId = new Map<string, { rec: TokenRecord; principal: Principal | undefined }>();
  /**
   * Secrets that checked out, so a client sending its token with every request costs a map
   * lookup, not a hash. Emptied at every token change, so a revocation is never served from it;
   * bounded, so unknown secrets cannot grow it (they are never added).
   */
  private verified = new Map<string, Principal>();

  constructor(
    private readonly batcher: WriteBatcher,
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  load(recs: readonly TokenRecord[]): void {
    this.byId = new Map(recs.map((r) => [r.id, { rec: r, principal: principalOf(r) }]));
    this.verified.clear();
  }

  /** A committed token change of this node. */
  apply(rec: TokenRecord): void {
    this.byId.set(rec.id, { rec, principal: principalOf(rec) });
    this.verified.clear();
  }

  /** Another node changed tokens: read them all again (there are few). */
  async reload(): Promise<void> {
    this.load(await this.store.listTokens());
  }

  /** The principal of a presented access token; undefined when it is unknown, revoked or wrong. */
  authenticate(secret: string): Principal | undefined {
    const known = this.verified.get(secret);
    if (known) return known;
    const id = accessTokenId(secret);
    const entry = id === undefined ? undefined : this.byId.get(id);
    // The hash is compared even for an unknown id, so timing tells nothing about which ids exist.
    const ok = tokenMatches(secret, entry?.rec.hash ?? DUMMY_HASH);
    const principal = ok ? entry?.principal : undefined;
    if (principal && this.verified.size < MAX_VERIFIED) this.verified.set(secret, principal);
    return principal;
  }

  get count(): number {
    return this.byId.size;
  }

  list(includeRevoked: boolean): AccessToken[] {
    return [...this.byId.values()]
      .filter((e) => includeRevoked || e.rec.revokedAt === undefined)
      .map((e) => toWireToken(e.rec));
  }

  /** `ctx`: the context of the request it serves (see NamingService). */
  async create(input: unknown, createdBy: string, id?: string, ctx?: RequestContext): Promise<CreateTokenResponse> {
    const body = (typeof input === 'object' && input !== null ? input : {}) as { name?: unknown; rules?: unknown };
    if (typeof body.name !== 'string') throw Errors.requiredField('name');
    checkName('name', body.name);
    const name = body.name;
    const rules = parseRules(body.rules).map(formatRule);
    const made = newAccessToken(id);
    const rec = await this.batcher.submit(
      async (tx) => {
        const all = await tx.listTokens();
        if (all.some((t) => t.name === name && t.revokedAt === undefined)) throw Errors.tokenNameTaken(name);
        if (all.some((t) => t.id === made.id)) throw Errors.tokenNameTaken(name);
        const now = this.clock.now();
        const rec: TokenRecord = { id: made.id, name, hash: made.hash, rules, createdAt: now, createdBy };
        await tx.putToken(rec);
        await tx.appendEvent({
          type: 'token.created',
          namespace: '*',
          at: now,
          detail: { id: rec.id, name, rules, by: createdBy },
        });
        return rec;
      },
      undefined,
      ctx,
    );
    return { token: toWireToken(rec), secret: made.secret };
  }

  /** Revokes by id, or by name when one active token has it. */
  async revoke(ref: string, by: string, ctx?: RequestContext): Promise<AccessToken> {
    const rec = await this.batcher.submit(
      async (tx) => {
        const active = (await tx.listTokens()).filter((t) => t.revokedAt === undefined);
        const cur = active.find((t) => t.id === ref) ?? active.find((t) => t.name === ref);
        if (!cur) throw Errors.tokenNotFound(ref);
        const now = this.clock.now();
        const next: TokenRecord = { ...cur, revokedAt: now };
        await tx.putToken(next);
        await tx.appendEvent({
          type: 'token.revoked',
          namespace: '*',
          at: now,
          detail: { id: cur.id, name: cur.name, by },
        });
        return next;
      },
      undefined,
      ctx,
    );
    return toWireToken(rec);
  }

  /**
   * At first start (no token at all), the admin token. Answers its secret, or undefined when
   * tokens exist already (or another node of the cluster made it at the same moment).
   */
  async bootstrapAdmin(): Promise<string | undefined> {
    if (this.byId.size > 0) return undefined;
    try {
      return (await this.create({ name: 'admin', rules: ['admin:*/*'] }, 'muster (first start)', ADMIN_TOKEN_ID))
        .secret;
    } catch (err) {
      if (err instanceof MusterError && (err.code === 'ALREADY_EXISTS' || err.code === 'UNAVAILABLE')) {
        await this.reload();
        if (this.byId.size > 0) return undefined;
      }
      throw err;
    }
  }
}

const DUMMY_HASH = '0'.repeat(64);
const MAX_VERIFIED = 10_000;

function principalOf(r: TokenRecord): Principal | undefined {
  if (r.revokedAt !== undefined) return undefined;
  return { id: r.id, name: r.name, rules: parseRules(r.rules) };
}

import type { AccessRight } from '@muster/api';
import { AccessRights } from '@muster/api';
import { Errors } from '../errors.js';

/**
 * Token rules: `right:namespacePattern/servicePattern`. A pattern is a name whose `*` matches any
 * run of characters; `right:ns` alone means every service of ns. Rights nest: admin includes
 * write, write includes read.
 */
export interface Rule {
  right: AccessRight;
  namespace: string;
  service: string;
}

/** `*` in a request's scope: "every namespace" (or service), e.g. listing events of all of them. */
export const ALL = '*';

const RANK: Record<AccessRight, number> = { read: 0, write: 1, admin: 2 };
// Names are A-Za-z0-9 _ - . : (DESIGN's limit); patterns add `*`.
const PATTERN = /^[A-Za-z0-9_\-.:*]{1,128}$/;
const MAX_RULES = 64;

export function parseRule(text: string, field = 'rules'): Rule {
  const colon = text.indexOf(':');
  const right = text.slice(0, colon);
  if (colon < 0 || !(AccessRights as readonly string[]).includes(right)) {
    throw Errors.invalid(
      field,
      `rule ${JSON.stringify(text)} must read right:namespace/service with right one of ${AccessRights.join(', ')} (e.g. write:prod/orders-*)`,
    );
  }
  const scope = text.slice(colon + 1);
  const slash = scope.indexOf('/');
  const namespace = slash < 0 ? scope : scope.slice(0, slash);
  const service = slash < 0 ? ALL : scope.slice(slash + 1);
  for (const p of [namespace, service]) {
    if (!PATTERN.test(p))
      throw Errors.invalid(
        field,
        `rule ${JSON.stringify(text)}: ${JSON.stringify(p)} is not a name pattern (1..128 of A-Za-z0-9 _ - . : and * as a wildcard)`,
      );
  }
  return { right: right as AccessRight, namespace, service };
}

export function parseRules(texts: unknown, field = 'rules'): Rule[] {
  if (!Array.isArray(texts) || texts.length === 0 || texts.length > MAX_RULES)
    throw Errors.invalid(field, `${field} must be a list of 1..${MAX_RULES} rules such as "read:prod/*"`);
  return texts.map((t, i) => {
    if (typeof t !== 'string')
      throw Errors.invalid(`${field}.${i}`, `${field}.${i} must be a string such as "read:prod/*"`);
    return parseRule(t, `${field}.${i}`);
  });
}

export const formatRule = (r: Rule): string => `${r.right}:${r.namespace}/${r.service}`;

/**
 * Whether the rules grant `right` over everything the scope names. A scope part `ALL` asks for
 * every namespace (or service): only a rule whose pattern is `*` there covers it.
 */
export function allows(rules: readonly Rule[], right: AccessRight, namespace: string, service: string): boolean {
  for (const r of rules) {
    if (RANK[r.right] < RANK[right]) continue;
    if (!covers(r.namespace, namespace) || !covers(r.service, service)) continue;
    return true;
  }
  return false;
}

/** Whether the rules grant `right` on at least one service of the namespace: enough to see the namespace. */
export function allowsSome(rules: readonly Rule[], right: AccessRight, namespace: string): boolean {
  return rules.some((r) => RANK[r.right] >= RANK[right] && covers(r.namespace, namespace));
}

function covers(pattern: string, name: string): boolean {
  return name === ALL ? pattern === ALL : globMatches(pattern, name);
}

/**
 * Whether a name matches a pattern whose `*` matches any run of characters. Not a RegExp: one
 * compiled from `*a*a*a...` backtracks exponentially on a long name without a match, and a
 * single request with such a token froze the server. This walk keeps one backtrack point (the
 * last `*`), so it costs at most pattern × name steps.
 */
export function globMatches(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    if (pattern[p] === '*') {
      star = p++;
      resume = n;
    } else if (p < pattern.length && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (star >= 0) {
      p = star + 1;
      n = ++resume;
    } else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

import type { Instance } from '@muster/api';
import { appOfService, eurekaIdOf, META, META_PREFIX } from './eureka-names.js';
import { isStatus, type EurekaStatus } from './eureka-registration.js';

/** What a delta says happened to an instance. */
export type ActionType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** An instance as Eureka's InstanceInfo serializes it: the fields real clients parse. */
export interface EurekaInstance {
  instanceId: string;
  hostName: string;
  app: string;
  ipAddr: string;
  status: EurekaStatus;
  overriddenStatus: EurekaStatus;
  port: { $: number; '@enabled': 'true' | 'false' };
  securePort: { $: number; '@enabled': 'true' | 'false' };
  countryId: number;
  dataCenterInfo: { '@class': string; name: 'MyOwn' };
  leaseInfo: {
    renewalIntervalInSecs: number;
    durationInSecs: number;
    registrationTimestamp: number;
    lastRenewalTimestamp: number;
    evictionTimestamp: number;
    serviceUpTimestamp: number;
  };
  metadata: Record<string, string>;
  homePageUrl: string;
  statusPageUrl: string;
  healthCheckUrl: string;
  vipAddress: string;
  secureVipAddress: string;
  isCoordinatingDiscoveryServer: 'false';
  lastUpdatedTimestamp: string;
  lastDirtyTimestamp: string;
  actionType: ActionType;
}

export interface EurekaApplication {
  name: string;
  instance: EurekaInstance[];
}

export interface EurekaApplications {
  versions__delta: string;
  apps__hashcode: string;
  application: EurekaApplication[];
}

/**
 * The status a Eureka client sees: isolation is an operator's OUT_OF_SERVICE, an expired lease
 * is DOWN, otherwise what the instance itself reported (UP for an instance of Muster's own API).
 */
export function statusOf(i: Instance): EurekaStatus {
  if (i.isolate) return 'OUT_OF_SERVICE';
  if (!i.healthy) return 'DOWN';
  const reported = i.metadata[META.status];
  return isStatus(reported) ? reported : 'UP';
}

export function toEurekaInstance(i: Instance, actionType: ActionType = 'ADDED'): EurekaInstance {
  const m = i.metadata;
  const app = appOfService(i.service);
  const secure = m[META.securePort] !== undefined ? Number(m[META.securePort]) : undefined;
  const https = i.protocol === 'https';
  const registered = Date.parse(i.createdAt);
  const renewed = Date.parse(i.lastHeartbeat);
  const updated = String(Date.parse(i.updatedAt));
  const hostName = m[META.hostName] ?? i.host;
  const base = `http://${hostName}:${i.port}/`;
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (!k.startsWith(META_PREFIX)) metadata[k] = v;
  return {
    instanceId: eurekaIdOf(i),
    hostName,
    app,
    ipAddr: i.host,
    status: statusOf(i),
    overriddenStatus: i.isolate ? 'OUT_OF_SERVICE' : 'UNKNOWN',
    port: { $: https ? 80 : i.port, '@enabled': https ? 'false' : 'true' },
    securePort: { $: secure ?? (https ? i.port : 443), '@enabled': secure !== undefined || https ? 'true' : 'false' },
    countryId: 1,
    dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
    leaseInfo: {
      renewalIntervalInSecs: i.healthCheck.ttl,
      durationInSecs: i.healthCheck.ttl * 3,
      registrationTimestamp: registered,
      lastRenewalTimestamp: renewed,
      evictionTimestamp: 0,
      serviceUpTimestamp: registered,
    },
    metadata,
    homePageUrl: m[META.homePageUrl] ?? base,
    statusPageUrl: m[META.statusPageUrl] ?? `${base}info`,
    healthCheckUrl: m[META.healthCheckUrl] ?? `${base}health`,
    vipAddress: m[META.vipAddress] ?? i.service,
    secureVipAddress: m[META.secureVipAddress] ?? i.service,
    isCoordinatingDiscoveryServer: 'false',
    lastUpdatedTimestamp: updated,
    lastDirtyTimestamp: updated,
    actionType,
  };
}

/** Eureka's apps__hashcode: `STATUS_count_` for each status present, sorted by status. */
export function hashCodeOf(apps: readonly EurekaApplication[]): string {
  const counts = new Map<string, number>();
  for (const a of apps) for (const i of a.instance) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
  return [...counts.keys()]
    .sort()
    .map((s) => `${s}_${counts.get(s)}_`)
    .join('');
}

/** Whether the client asked for XML only: Eureka answers JSON to whoever accepts it, XML otherwise. */
export function wantsXml(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return false;
  const a = accept.toLowerCase();
  return a.includes('xml') && !a.includes('json') && !a.includes('*/*');
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const escape = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/**
 * A document in Eureka's XML form, from the same object as its JSON: `@x` keys are attributes,
 * `$` is the element's text, an array repeats its element. Metadata keys are element names there,
 * so a key that is not a valid XML name is left out of the XML answer.
 */
export function toXml(root: string, value: unknown): string {
  return `<?xml version="1.0" encoding="UTF-8"?>${element(root, value)}`;
}

const XML_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function element(name: string, value: unknown): string {
  if (!XML_NAME.test(name)) return '';
  if (Array.isArray(value)) return value.map((v) => element(name, v)).join('');
  if (value === null || value === undefined) return `<${name}/>`;
  if (typeof value !== 'object') return `<${name}>${escape(String(value))}</${name}>`;
  let attrs = '';
  let body = '';
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k.startsWith('@')) attrs += ` ${k.slice(1)}="${escape(String(v))}"`;
    else if (k === '$') body += escape(String(v));
    else body += element(k, v);
  }
  return `<${name}${attrs}>${body}</${name}>`;
}

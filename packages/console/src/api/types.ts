/** The wire shapes the console reads: the server's own definitions, plus the console's endpoints. */
export type {
  AccessRight, AccessToken, ClusterNode, ClusterStatus, CreateTokenResponse, DiscoverResponse, DiscoveredInstance,
  EventType, Namespace, RegistryEvent, Service,
} from '@muster/api';
import type { AccessRight } from '@muster/api';

/** GET /v1/tokens/self */
export interface SelfInfo {
  auth: { enabled: boolean; clients: 'required' | 'open' };
  token: { id: string; name: string; rules: string[] } | null;
  rights: AccessRight[];
}

/** GET /v1/stats */
export interface RateSample {
  at: string;
  registrations: number;
  heartbeats: number;
  discoveries: number;
}

export interface Stats {
  intervalMs: number;
  samples: RateSample[];
}

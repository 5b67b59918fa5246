/** The wire shapes the console reads: the server's own definitions. */
export type {
  AccessRight,
  AccessToken,
  ClusterNode,
  ClusterStatus,
  CreateTokenResponse,
  DiscoverResponse,
  DiscoveredInstance,
  EventType,
  Namespace,
  RegistryEvent,
  Service,
  StatsResponse as Stats,
  TokenSelf as SelfInfo,
} from '@muster/api';

/**
 * @muster/client: the Muster SDK (`MusterClient`: register, discover, pick) and the typed HTTP
 * client of the API v1 (`MusterHttpClient`). The shared wire types and MusterError are
 * re-exported so callers need only this package.
 */
export * from '@muster/api';
export { balancerByName, balancers, locality, ringHash, roundRobin, weightedRandom } from './balance/index.js';
export type { BalancerName, LoadBalancer, PickableInstance, Picker, PickOptions } from './balance/index.js';
export {
  ClientClosedError,
  DiskCacheError,
  GrpcChannelError,
  HeartbeatFailedError,
  HttpStatusError,
  InvalidOptionError,
  MalformedStreamError,
  NoInstanceError,
  NoServerReachableError,
  NotJsonAnswerError,
  RequestTimeoutError,
  ServerUnreachableError,
  SnapshotHandlerError,
  StreamEndedError,
  UnexpectedError,
  VerificationNotListeningError,
  WatchFallbackError,
} from './errors.js';
export * from './http-client.js';
export { ReadYourWrites } from './read-your-writes.js';
export type { TlsOptions } from './tls.js';
export type { CallOptions } from './transport.js';
export type { SnapshotHandler, Watch, WatchEnd } from './watch.js';
export { MusterClient } from './sdk/muster-client.js';
export type {
  CallOptions as ClientCallOptions,
  ClientEvents,
  ClientPickOptions,
  DiscoverOptions as ClientDiscoverOptions,
  ServiceRef,
} from './sdk/muster-client.js';
export { isFailedCall } from './sdk/call-outcome.js';
export type { Ejection, OutlierOptions } from './sdk/outlier-detector.js';
export type { MusterClientOptions, ServiceOptions } from './sdk/options.js';
export { Registration } from './sdk/registration.js';
export type { RegistrationEvents, RegistrationInput, RegistrationState } from './sdk/registration.js';
export { attachVerificationResponder, verificationResponder } from './sdk/verification-responder.js';
export type { VerificationResponder, VerificationResponderOptions } from './sdk/verification-responder.js';
export type { DiscoveryAnswer, StaleReason, ViewSource } from './sdk/service-view.js';

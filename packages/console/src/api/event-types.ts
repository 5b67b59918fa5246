import type { EventType } from './types';

/**
 * The event types, for the events page's filter. The server's list lives in @muster/api beside
 * Node-only code, so it is repeated here, and the compiler holds the two equal both ways.
 */
export const EVENT_TYPES = [
  'namespace.created',
  'namespace.deleted',
  'service.created',
  'service.updated',
  'service.deleted',
  'instance.registered',
  'instance.updated',
  'instance.deregistered',
  'instance.unhealthy',
  'instance.healthy',
  'instance.isolated',
  'instance.unisolated',
  'instance.metadata_changed',
  'instance.removed',
  'instance.verified',
  'instance.verification_failed',
  'token.created',
  'token.revoked',
  'audit',
] as const satisfies readonly EventType[];

type Missing = Exclude<EventType, (typeof EVENT_TYPES)[number]>;
const complete: Missing extends never ? true : Missing = true;
void complete;

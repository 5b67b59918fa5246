import type { DiscoverFilter } from '@muster/api';
import { isDefaultFilter } from '@muster/api';
import type { ServiceEntry } from '../../index/registry-index.js';
import { NamingService } from '../../naming/naming-service.js';

/**
 * Discovery answers in protobuf. The index answer objects already have the proto's shape
 * (camelCase JSON names), so they are encoded as they are. For the default filter the index
 * keeps one pre-serialized JSON answer per service, rebuilt when the revision moves or its
 * heartbeat ages go stale; its protobuf encoding is kept next to it, keyed by that very buffer,
 * so it lives exactly as long and a hot service is encoded once per rebuild, not per call.
 */
export class AnswerEncoder {
  private readonly encoded = new WeakMap<Buffer, Buffer>();

  constructor(
    private readonly naming: NamingService,
    private readonly encode: (answer: object) => Buffer,
  ) {}

  /** `stale`: why this node's index may be behind (cluster mode); such an answer is rare and built each time. */
  answer(entry: ServiceEntry, filter: DiscoverFilter, stale?: string): Buffer {
    if (stale !== undefined)
      return this.encode({ ...this.naming.answer(entry, filter), stale: true, staleReason: stale });
    if (!isDefaultFilter(filter)) return this.encode(this.naming.answer(entry, filter));
    const json = this.naming.answerBytes(entry, filter);
    let bytes = this.encoded.get(json);
    if (!bytes) this.encoded.set(json, (bytes = this.encode(JSON.parse(json.toString('utf8')) as object)));
    return bytes;
  }

  /** A watched service that does not exist (a watch with allowMissing): empty, at revision 0. */
  missing(namespace: string, service: string, stale?: string): Buffer {
    return this.encode({ ...NamingService.missingAnswer(namespace, service), ...staleFields(stale) });
  }

  /** The caller's revision is current: no instances, and nothing built. */
  unchanged(entry: ServiceEntry, stale?: string): object {
    return {
      namespace: entry.rec.namespace,
      service: entry.rec.name,
      revision: entry.rec.revision,
      unchanged: true,
      ...staleFields(stale),
    };
  }
}

const staleFields = (stale: string | undefined) => (stale === undefined ? {} : { stale: true, staleReason: stale });

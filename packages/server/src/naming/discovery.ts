import type { DiscoverFilter, DiscoverResponse } from '@muster/api';
import { isDefaultFilter } from '@muster/api';
import type { ServiceEntry } from '../index/registry-index.js';
import type { NamingContext } from './naming-context.js';
import { checkName } from './validate.js';

/** What a watch with allowMissing sends for a service that does not exist: empty, at revision 0. */
export function missingAnswer(namespace: string, service: string): DiscoverResponse {
  return { namespace, service, revision: 0, instances: [] };
}

/** Discovery: the service a read or watch is about, and its answer, all from the index. */
export class Discovery {
  constructor(private readonly ctx: NamingContext) {}

  resolve(namespace: string, service: string): ServiceEntry {
    return this.ctx.requireService(namespace, service);
  }

  /**
   * The service a watch follows. With `allowMissing`, a service its namespace does not have (yet,
   * or any more) is undefined rather than NOT_FOUND: the watcher gets it as empty until it exists.
   */
  watched(namespace: string, service: string, allowMissing: boolean): ServiceEntry | undefined {
    if (!allowMissing) return this.ctx.requireService(namespace, service);
    this.ctx.requireNamespace(namespace);
    checkName('service', service);
    return this.ctx.index.service(namespace, service);
  }

  /** The discovery answer as bytes: the pre-serialized one for the default filter. */
  answerBytes(entry: ServiceEntry, filter: DiscoverFilter): Buffer {
    const now = this.ctx.clock.now();
    if (isDefaultFilter(filter)) {
      this.ctx.metrics.disc.cached.inc();
      return this.ctx.index.defaultAnswer(entry, now);
    }
    this.ctx.metrics.disc.filtered.inc();
    return Buffer.from(JSON.stringify(this.ctx.index.answer(entry, filter, now)));
  }

  /** The discovery answer as an object, for adapters that encode it themselves. */
  answer(entry: ServiceEntry, filter: DiscoverFilter): DiscoverResponse {
    this.ctx.metrics.disc.filtered.inc();
    return this.ctx.index.answer(entry, filter, this.ctx.clock.now());
  }
}

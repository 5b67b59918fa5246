import type { Namespace } from '@muster/api';
import type { RequestContext } from '../batch/request-context.js';
import { Errors, MusterError } from '../errors.js';
import { namespaceEvent } from '../events/event-records.js';
import { toWireNamespace } from '../model/records.js';
import type { NamingContext } from './naming-context.js';
import { checkName, validateNamespaceInput } from './validate.js';

export const DEFAULT_NAMESPACE = 'default';

/** Namespaces: created and deleted through the batcher, read from the index. */
export class Namespaces {
  constructor(private readonly ctx: NamingContext) {}

  /** Makes sure the default namespace exists; called once at start. */
  async ensureDefault(): Promise<void> {
    if (this.ctx.index.namespaces.has(DEFAULT_NAMESPACE)) return;
    await this.create({ name: DEFAULT_NAMESPACE, comment: 'created at first start' }).catch((err: unknown) => {
      if (!(err instanceof MusterError && err.code === 'ALREADY_EXISTS')) throw err;
    });
  }

  list(): Namespace[] {
    return [...this.ctx.index.namespaces.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(toWireNamespace);
  }

  get(name: string): Namespace & { serviceCount: number } {
    checkName('namespace', name);
    const ns = this.ctx.index.namespaces.get(name);
    if (!ns) throw Errors.namespaceNotFound(name);
    return { ...toWireNamespace(ns), serviceCount: this.ctx.index.servicesOf(name).length };
  }

  async create(input: unknown, rctx?: RequestContext): Promise<Namespace> {
    const v = validateNamespaceInput(input);
    return this.ctx.batcher.submit(
      async (tx) => {
        if (await tx.getNamespace(v.name)) throw Errors.namespaceExists(v.name);
        const now = this.ctx.clock.now();
        const rec = { name: v.name, comment: v.comment, createdAt: now, updatedAt: now };
        await tx.putNamespace(rec);
        await tx.appendEvent(namespaceEvent('namespace.created', v.name, now));
        return toWireNamespace(rec);
      },
      { namespaces: [v.name] },
      rctx,
    );
  }

  /** Refuses the default namespace and one that still has services. */
  async delete(name: string, rctx?: RequestContext): Promise<void> {
    checkName('namespace', name);
    if (name === DEFAULT_NAMESPACE) throw Errors.defaultNamespace();
    await this.ctx.batcher.submit(
      async (tx) => {
        if (!(await tx.getNamespace(name))) throw Errors.namespaceNotFound(name);
        const services = await tx.countServices(name);
        if (services > 0) throw Errors.namespaceNotEmpty(name, services);
        await tx.deleteNamespace(name);
        await tx.appendEvent(namespaceEvent('namespace.deleted', name, this.ctx.clock.now()));
      },
      { namespaces: [name] },
      rctx,
    );
  }
}

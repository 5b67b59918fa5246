import net from 'node:net';

/**
 * A TCP proxy between Muster and a service it depends on (MariaDB, Redis), the way etcd's
 * tests/framework bridge makes faults: `cut()` drops every connection and refuses new ones until
 * `restore()` (on the same port); `hold()` keeps connections open but passes nothing on until
 * `release()` (a server that hangs). The machine's services themselves are never stopped.
 */
export class FaultProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; held: Buffer[] }>();
  private holding = false;
  port = 0;

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  async start(): Promise<this> {
    await this.listen();
    return this;
  }

  /** Drops every connection and refuses new ones until `restore()`. */
  async cut(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async restore(): Promise<void> {
    if (!this.server) await this.listen();
  }

  /** Keeps what clients send from reaching the service until `release()`. */
  hold(): void {
    this.holding = true;
  }

  /** How many chunks of data `hold()` keeps back now. */
  get heldChunks(): number {
    let n = 0;
    for (const p of this.pairs) n += p.held.length;
    return n;
  }

  release(): void {
    this.holding = false;
    for (const p of this.pairs) for (const d of p.held.splice(0)) p.upstream.write(d);
  }

  async stop(): Promise<void> {
    await this.cut();
  }

  private listen(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.upstreamPort, this.upstreamHost);
      const pair = { client, upstream, held: [] as Buffer[] };
      this.pairs.add(pair);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.on('data', (d: Buffer) => (this.holding ? pair.held.push(d) : upstream.write(d)));
      upstream.on('data', (d: Buffer) => client.write(d));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }
}

import { authHeaders } from './http';

export interface SseHandlers {
  onEvent(event: string, data: string, id: string | undefined): void;
  /** The stream is open (again). */
  onOpen?(): void;
  /** The stream failed or ended; it is opened again after `retryMs`. */
  onDrop?(why: string): void;
}

/**
 * Server-Sent Events over fetch, not EventSource: EventSource cannot send the Authorization
 * header a server with auth.clients required asks for. Reconnects until `close()`.
 */
export function openSse(url: string, handlers: SseHandlers, retryMs = 1000): { close(): void } {
  let closed = false;
  let abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const connect = async () => {
    abort = new AbortController();
    try {
      const res = await fetch(url, {
        headers: { accept: 'text/event-stream', ...authHeaders() },
        signal: abort.signal,
      });
      if (!res.ok || !res.body) {
        const body = await res.text().catch(() => '');
        let message = `HTTP ${res.status}`;
        try {
          message = (JSON.parse(body) as { error: { message: string } }).error.message;
        } catch {
          /* not the API's error shape */
        }
        throw new Error(message);
      }
      handlers.onOpen?.();
      await readEvents(res.body, handlers.onEvent);
      if (!closed) handlers.onDrop?.('the server closed the stream');
    } catch (err) {
      if (closed) return;
      handlers.onDrop?.((err as Error).message);
    }
    if (!closed) timer = setTimeout(() => void connect(), retryMs);
  };
  void connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      abort.abort();
    },
  };
}

async function readEvents(body: ReadableStream<Uint8Array>, onEvent: SseHandlers['onEvent']): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id') id = val;
      }
      if (data.length > 0) onEvent(event, data.join('\n'), id);
    }
  }
}

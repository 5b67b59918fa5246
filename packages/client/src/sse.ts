import { createParser, type EventSourceMessage } from 'eventsource-parser';

export type { EventSourceMessage };

/**
 * Reads a Server-Sent Events body to its end, handing each event to `onEvent`. Returning false
 * from `onEvent` stops reading (the caller then releases the connection). Rejects when the
 * connection fails or is aborted.
 */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: EventSourceMessage) => boolean | void,
): Promise<void> {
  let stop = false;
  const parser = createParser({
    onEvent: (event) => {
      if (!stop && onEvent(event) === false) stop = true;
    },
  });
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    while (!stop) {
      const { done, value } = await reader.read();
      if (done) {
        // An event needs its blank line; a stream cut before it did not deliver that event.
        parser.feed(decoder.decode());
        return;
      }
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    reader.releaseLock();
  }
}

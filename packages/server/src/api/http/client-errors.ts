import http from 'node:http';
import type { Socket } from 'node:net';
import { Errors, type MusterError } from '../../errors.js';

/** How long a refused connection's leftover bytes are read before it is closed. */
const LINGER_MS = 1000;

/**
 * Requests Node's HTTP parser refuses before any route exists for them (headers over
 * maxHeaderSize, malformed HTTP, a request not received in time) get the API's error body
 * like every other refusal, instead of Fastify's or Node's own. `onRefused` learns the address
 * (such a refusal counts against its write limit).
 */
export function clientErrorHandler(
  onRefused: (address: string) => void,
): (err: NodeJS.ErrnoException, socket: Socket) => void {
  const answered = new WeakSet<Socket>();
  return (err, socket) => {
    // A reset connection has nobody to answer; one answered already is being closed (the parser
    // keeps failing on what is read meanwhile).
    if (err.code === 'ECONNRESET' || socket.destroyed || answered.has(socket)) return;
    answered.add(socket);
    let status: number;
    let error: MusterError;
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      error = Errors.headersTooLarge(http.maxHeaderSize);
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      error = Errors.requestTimeout();
    } else {
      status = 400;
      error = Errors.malformedRequest();
    }
    if (socket.remoteAddress !== undefined) onRefused(socket.remoteAddress);
    if (socket.writable) {
      const body = JSON.stringify(error.toJSON());
      socket.write(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    // Closed only once what the client is still sending has been read for a moment: a close
    // with unread bytes resets the connection, and the client may lose the answer to it.
    socket.end();
    socket.resume();
    socket.once('end', () => socket.destroy());
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
}

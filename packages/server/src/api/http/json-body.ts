import type { FastifyInstance } from 'fastify';
import { Errors } from '../../errors.js';

/**
 * Arrays and objects nested deeper than this refuse a body. No request of the API nests deeper
 * than 4 (a heartbeat batch: object, array, object, value); JSON.parse of a 1 MB body of nested
 * brackets, on the other hand, costs the event loop a tenth of a second or more.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * Whether a JSON text nests arrays and objects deeper than `max`, found by one pass that skips
 * strings and stops at the first bracket too deep: cheap next to parsing, and nothing is built.
 * Only the depth is judged; whether the text is JSON at all is JSON.parse's to say.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skip to its closing quote, stepping over escapes.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** application/json bodies: Fastify's own parser (prototype poisoning refused), after the depth check. */
export function boundedJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (nestsDeeperThan(body as string, MAX_JSON_DEPTH)) done(Errors.jsonTooDeep(MAX_JSON_DEPTH), undefined);
    else parse(req, body as string, done);
  });
}

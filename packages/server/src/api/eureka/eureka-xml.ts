import type { FastifyInstance } from 'fastify';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { EurekaErrors } from './eureka-errors.js';

/**
 * XML parsed as Eureka's XStream writes it, into the shape its JSON has: attributes as `@name`,
 * an element's text beside them as `$`, every value text (the decoder reads numbers from it).
 * No entities are expanded and no DOCTYPE is taken: a body is data, never a reference to more.
 */
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  textNodeName: '$',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  ignoreDeclaration: true,
});

export function parseXml(text: string): unknown {
  if (/<!DOCTYPE/i.test(text)) throw EurekaErrors.badXml('a DOCTYPE is not accepted');
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw EurekaErrors.badXml(`${valid.err.msg} (line ${valid.err.line})`);
  return parser.parse(text) as unknown;
}

/** application/xml and text/xml bodies, for the Eureka routes only (this plugin's scope). */
export function xmlBodies(app: FastifyInstance): void {
  app.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseXml(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}

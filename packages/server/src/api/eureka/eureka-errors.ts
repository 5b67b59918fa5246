import { MusterError } from '@muster/api';

/**
 * The errors only the Eureka adapter raises, declared once. Each is a MusterError, so the HTTP
 * adapter's one table gives it its status (400, 403, 404, 409): bad input is never a 5xx.
 */
export const EurekaErrors = {
  badBody: (why: string) =>
    new MusterError('INVALID_ARGUMENT', `Eureka registration body is malformed: ${why}`, { field: 'body' }),
  badField: (field: string, describe: string) =>
    new MusterError('INVALID_ARGUMENT', `instance.${field} must be ${describe}`, { field: `instance.${field}` }),
  badXml: (why: string) =>
    new MusterError('INVALID_ARGUMENT', `request body is not valid XML: ${why}`, { field: 'body' }),
  badStatus: (value: string) =>
    new MusterError(
      'INVALID_ARGUMENT',
      `status value ${JSON.stringify(value)} is not one of UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN`,
      { field: 'value' },
    ),
  badMetadata: (why: string) => new MusterError('INVALID_ARGUMENT', `metadata update refused: ${why}`),
  appNotFound: (app: string) => new MusterError('NOT_FOUND', `Eureka application ${app} is not registered`),
  instanceNotFound: (app: string, id: string) =>
    new MusterError('NOT_FOUND', `Eureka instance ${app}/${id} is not registered; register it again`),
  notEurekaOwned: (app: string, id: string) =>
    new MusterError(
      'PERMISSION_DENIED',
      `instance ${app}/${id} was registered through Muster's own API: renew, cancel or change it there`,
    ),
  idTakenNatively: (app: string, id: string) =>
    new MusterError(
      'ALREADY_EXISTS',
      `instance id ${id} of ${app} belongs to an instance registered through Muster's own API`,
    ),
};

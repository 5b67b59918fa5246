import { fileURLToPath } from 'node:url';

/** Where the gRPC API's definition is: the package ships a copy of the repository's proto/. */
export const PROTO_ROOT = fileURLToPath(new URL('./proto', import.meta.url));
/** The file that defines `muster.v1.Registry`, relative to PROTO_ROOT. */
export const REGISTRY_PROTO = 'muster/v1/registry.proto';

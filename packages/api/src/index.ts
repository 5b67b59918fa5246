export * from './consistency.js';
export * from './errors.js';
export * from './filter.js';
export * from './grpc-codes.js';
export * from './limits.js';
export * from './proto.js';
export * from './types.js';
export * from './verification.js';

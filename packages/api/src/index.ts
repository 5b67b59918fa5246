export * from './errors.js';
export * from './limits.js';
export * from './types.js';

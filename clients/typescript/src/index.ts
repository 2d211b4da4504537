export * from './client.js';
export * from './transfer.js';

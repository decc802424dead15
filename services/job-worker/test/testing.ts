/**
 * What other packages' tests may use of this service (the `./testing` entry): start it as
 * production composes it, on port 0 with temp storage, and read its configuration.
 */

export { loadServerConfig } from '../src/config';
export { jobEvents } from '../src/events';
export { type RunningQueue, startQueue } from './helpers';

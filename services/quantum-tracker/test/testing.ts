/**
 * What other packages' tests may use of this service (the `./testing` entry): start it as
 * production composes it, on port 0 with temp storage, and read its configuration.
 */

export { loadTrackerConfig } from '../src/config';
export { trackerEvents } from '../src/events';
export { type RunningTracker, startTracker } from './helpers';

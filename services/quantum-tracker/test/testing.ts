/**
 * What other packages' tests may use of this service (the `./testing` entry): start it as
 * production composes it, on port 0 with temp storage, and read its configuration; or run a
 * provider's test double (IonQ's is a real HTTP server a whole stack can be pointed at).
 */

export { loadTrackerConfig } from '../src/config';
export { trackerEvents } from '../src/events';
export { FakeIonq, type FakeIonqJob } from './fake-providers';
export { type RunningTracker, startTracker } from './helpers';

/**
 * What other packages' tests may use of this service (the `./testing` entry): start it as
 * production composes it, on port 0 with temp storage, and read its configuration.
 */

export { compose as composeDomain } from '../src/compose';
export { loadAnalyticsConfig } from '../src/config';
export { analyticsEvents } from '../src/events';
export { type RunningDomain, startDomain } from './helpers';

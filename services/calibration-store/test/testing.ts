/**
 * What other packages' tests may use of this service (the `./testing` entry): start it as
 * production composes it, on port 0 with temp storage, and read its configuration.
 */

export { loadCalibrationConfig } from '../src/config';
export { calibrationEvents } from '../src/events';
export { makeZip, type RunningStore, startStore } from './helpers';

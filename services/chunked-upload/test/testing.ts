/**
 * What other packages' tests may use of this service (the `./testing` entry): start it as
 * production composes it, on port 0 with temp storage, and read its configuration.
 */

export { loadUploadConfig } from '../src/config';
export { uploadEvents } from '../src/events';
export { GATEWAY_TOKEN, KEY, type RunningUploads, startUploads } from './helpers';

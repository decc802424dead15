import { isLoopback, requireTokenOffLoopback } from '@qlab/kit';
import { loadAnalyticsConfig } from 'analytics/testing';
import { loadCalibrationConfig } from 'calibration-store/testing';
import { loadUploadConfig } from 'chunked-upload/testing';
import { loadServerConfig } from 'job-worker/testing';
import { loadTrackerConfig } from 'quantum-tracker/testing';

describe('secure by default: off loopback, a service needs its token', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      expect([h, isLoopback(h)]).toEqual([h, true]);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'lab.example.org', '127.0.0.1.evil.org'])
      expect([h, isLoopback(h)]).toEqual([h, false]);
    expect(() => requireTokenOffLoopback('0.0.0.0', undefined, 'X_TOKEN')).toThrow(/X_TOKEN/);
    expect(() => requireTokenOffLoopback('0.0.0.0', 'set', 'X_TOKEN')).not.toThrow();
    expect(() => requireTokenOffLoopback('127.0.0.1', undefined, 'X_TOKEN')).not.toThrow();
  });

  const services: [string, string, (env: NodeJS.ProcessEnv) => unknown][] = [
    [
      'calibration-store',
      'QIBO_API_TOKEN',
      (e) => loadCalibrationConfig([], { ...e, QIBO_SERVER_CONFIG: '/nonexistent/x.json' }),
    ],
    ['chunked-upload', 'UPLOAD_GATEWAY_TOKEN', (e) => loadUploadConfig(e)],
    ['job-worker', 'JOBS_API_TOKEN', (e) => loadServerConfig(e)],
    ['quantum-tracker', 'TRACKER_API_TOKEN', (e) => loadTrackerConfig(e)],
    ['analytics', 'ANALYTICS_API_TOKEN', (e) => loadAnalyticsConfig([], { ...e, ANALYTICS_DOMAIN: 'test' })],
  ];
  it.each(services)('%s refuses HOST=0.0.0.0 without %s, and starts with it', (_name, variable, load) => {
    expect(() => load({ HOST: '0.0.0.0' })).toThrow(new RegExp(variable));
    expect(() => load({ HOST: '0.0.0.0', [variable]: 'a-long-random-token-value' })).not.toThrow();
    expect(() => load({ HOST: '127.0.0.1' })).not.toThrow();
  });

  it('chunked-upload also starts off loopback with client keys only', () => {
    expect(() => loadUploadConfig({ HOST: '0.0.0.0', UPLOAD_API_KEYS: 'k1,k2' })).not.toThrow();
  });
});

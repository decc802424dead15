import { loadTrackerConfig } from '../src/config';

test('providers come from env; IBM needs its instance CRN', () => {
  expect(loadTrackerConfig({})).toMatchObject({
    port: 8000,
    ibm: undefined,
    ionq: undefined,
    syncIntervalMs: 60_000,
    pricePerQuantumSecond: 1.6,
  });
  expect(() => loadTrackerConfig({ IBM_QUANTUM_TOKEN: 'k' })).toThrow(/IBM_QUANTUM_INSTANCE/);
  expect(() => loadTrackerConfig({ IBM_QUANTUM_TOKEN: 'k', IBM_QUANTUM_INSTANCE: 'my-instance' })).toThrow(
    /crn:/,
  );
  const c = loadTrackerConfig({
    IBM_QUANTUM_TOKEN: 'k',
    IBM_QUANTUM_INSTANCE: 'crn:v1:bluemix:public:quantum-computing:us-east:a/x:y::',
    IONQ_API_KEY: 'q',
    TRACKER_SYNC_INTERVAL: '5m',
    TRACKER_PRICE_PER_QUANTUM_SECOND: '0.5',
  });
  expect(c.ibm).toMatchObject({
    apiKey: 'k',
    apiUrl: 'https://quantum.cloud.ibm.com/api',
    iamUrl: 'https://iam.cloud.ibm.com',
  });
  expect(c.ionq).toMatchObject({ apiKey: 'q', apiUrl: 'https://api.ionq.co/v0.4' });
  expect(c).toMatchObject({ syncIntervalMs: 300_000, pricePerQuantumSecond: 0.5 });
  expect(() => loadTrackerConfig({ TRACKER_PRICE_PER_QUANTUM_SECOND: '-1' })).toThrow(
    /TRACKER_PRICE_PER_QUANTUM_SECOND/,
  );
  expect(() => loadTrackerConfig({ IONQ_API_URL: 'not a url' })).toThrow(/IONQ_API_URL/);
});

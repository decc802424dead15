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
    accounts: [{ label: '', apiKey: 'k' }],
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

describe('the IBM host follows the instance CRN', () => {
  const load = (crn: string, extra: NodeJS.ProcessEnv = {}) =>
    loadTrackerConfig({ IBM_QUANTUM_TOKEN: 'k', IBM_QUANTUM_INSTANCE: crn, ...extra }).ibm!;
  test('us-east, other regions, staging, and an explicit URL', () => {
    expect(load('crn:v1:bluemix:public:quantum-computing:us-east:a/x:y::')).toMatchObject({
      apiUrl: 'https://quantum.cloud.ibm.com/api',
      iamUrl: 'https://iam.cloud.ibm.com',
    });
    expect(load('crn:v1:bluemix:public:quantum-computing:eu-de:a/x:y::')).toMatchObject({
      apiUrl: 'https://eu-de.quantum.cloud.ibm.com/api',
      iamUrl: 'https://iam.cloud.ibm.com',
    });
    expect(
      load('crn:v1:staging:public:quantum-computing:us-east:a/x:y::', {
        IBM_QUANTUM_API_URL: 'https://quantum.test.cloud.ibm.com/api',
      }).iamUrl,
    ).toBe('https://iam.test.cloud.ibm.com');
    // Staging without its API host would pair the staging IAM with the production API.
    expect(() => load('crn:v1:staging:public:quantum-computing:us-east:a/x:y::')).toThrow(
      'IBM_QUANTUM_API_URL',
    );
    // As the official client: a CRN without the trailing "::", or with spaces around it.
    expect(load('  crn:v1:bluemix:public:quantum-computing:eu-de:a/x:y  ')).toMatchObject({
      apiUrl: 'https://eu-de.quantum.cloud.ibm.com/api',
      instance: 'crn:v1:bluemix:public:quantum-computing:eu-de:a/x:y',
    });
    // Private endpoints, as qiskit-ibm-runtime builds them.
    expect(
      load('crn:v1:bluemix:public:quantum-computing:us-east:a/x:y::', {
        IBM_QUANTUM_PRIVATE_ENDPOINT: 'true',
      }),
    ).toMatchObject({
      apiUrl: 'https://private.us-east.quantum.cloud.ibm.com/api',
      iamUrl: 'https://private.iam.cloud.ibm.com',
    });
    expect(
      load('crn:v1:bluemix:public:quantum-computing:eu-de:a/x:y::', {
        IBM_QUANTUM_API_URL: 'https://p.example/api/',
      }).apiUrl,
    ).toBe('https://p.example/api');
  });

  test('several keys of one instance, labelled or not', () => {
    const crn = 'crn:v1:bluemix:public:quantum-computing:us-east:a/x:y::';
    expect(load(crn, { IBM_QUANTUM_TOKEN: 'k1, k2' }).accounts).toEqual([
      { label: '', apiKey: 'k1' },
      { label: '2', apiKey: 'k2' },
    ]);
    expect(load(crn, { IBM_QUANTUM_TOKEN: 'alice:k1,bob:k2' }).accounts.map((a) => a.label)).toEqual([
      'alice',
      'bob',
    ]);
    expect(() => load(crn, { IBM_QUANTUM_TOKEN: 'a:k1,a:k2' })).toThrow(/same label/);
    expect(() => load(crn, { IBM_QUANTUM_TOKEN: 'bad label!:k1' })).toThrow(/label/);
  });
});

describe("the seed tracker's variables", () => {
  test('are read as aliases, the qlab names win, and the config says which were used', () => {
    const c = loadTrackerConfig({
      API_HOST: '127.0.0.2',
      API_PORT: '9000',
      DATABASE_URL: 'sqlite:///./quantum_jobs.db',
      DEBUG: 'True',
      LOG_LEVEL: '',
    });
    expect(c).toMatchObject({ host: '127.0.0.2', port: 9000, logLevel: 'debug' });
    expect(c.dbUrl).toBe('sqlite:///./quantum_jobs.db');
    expect(c.aliasesUsed).toEqual([
      'API_HOST → HOST',
      'API_PORT → PORT',
      'DATABASE_URL → TRACKER_DB_URL',
      'DEBUG → LOG_LEVEL=debug',
    ]);
    const both = loadTrackerConfig({
      API_PORT: '9000',
      PORT: '8001',
      DATABASE_URL: 'x.db',
      TRACKER_DB_URL: 'y.db',
    });
    expect(both).toMatchObject({ port: 8001, dbUrl: 'y.db', aliasesUsed: [] });
  });

  test('LOG_LEVEL in any case, with Python names', () => {
    expect(loadTrackerConfig({ LOG_LEVEL: 'INFO' }).logLevel).toBe('info');
    expect(loadTrackerConfig({ LOG_LEVEL: 'WARNING' }).logLevel).toBe('warn');
    expect(loadTrackerConfig({ LOG_LEVEL: 'Critical' }).logLevel).toBe('fatal');
    expect(() => loadTrackerConfig({ LOG_LEVEL: 'LOUD' })).toThrow(/LOG_LEVEL/);
  });

  test("the retired ibm_quantum channel and the seed's default instance are explained", () => {
    for (const c of ['ibm_quantum_platform', 'ibm_cloud'])
      expect(() => loadTrackerConfig({ IBM_QUANTUM_CHANNEL: c })).not.toThrow();
    expect(() => loadTrackerConfig({ IBM_QUANTUM_CHANNEL: 'ibm_quantum' })).toThrow(/retired.*CRN/s);
    expect(() => loadTrackerConfig({ IBM_QUANTUM_CHANNEL: 'quantum' })).toThrow(/ibm_quantum_platform/);
    expect(() => loadTrackerConfig({ IBM_QUANTUM_TOKEN: 'k', IBM_QUANTUM_INSTANCE: 'ibm_quantum' })).toThrow(
      /retired in 2025.*crn:v1/s,
    );
    expect(() =>
      loadTrackerConfig({ IBM_QUANTUM_TOKEN: 'k', IBM_QUANTUM_INSTANCE: 'ibm-q/open/main' }),
    ).toThrow(/not an instance CRN/);
  });

  test("the seed's API_HOST=0.0.0.0 needs the tracker's token, as any host off loopback", () => {
    expect(() => loadTrackerConfig({ API_HOST: '0.0.0.0' })).toThrow(/TRACKER_API_TOKEN/);
  });
});

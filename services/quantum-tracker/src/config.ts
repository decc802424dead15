import path from 'node:path';
import { baseEnv, ConfigError, env, loadConfig, requireTokenOffLoopback } from '@qlab/kit';
import { z } from 'zod';

export const envSchema = z.object({
  ...baseEnv(8000),
  /** IBM Quantum Platform API key (exchanged at IAM for a bearer token). */
  IBM_QUANTUM_TOKEN: env.optionalString(),
  /** The instance CRN (Service-CRN header); required with IBM_QUANTUM_TOKEN. */
  IBM_QUANTUM_INSTANCE: env.optionalString(),
  IBM_QUANTUM_API_URL: z.url().default('https://quantum.cloud.ibm.com/api'),
  IBM_IAM_URL: z.url().default('https://iam.cloud.ibm.com'),
  IONQ_API_KEY: env.optionalString(),
  IONQ_API_URL: z.url().default('https://api.ionq.co/v0.4'),
  /** IonQ does not document the unit of average_queue_time: ms per unit (1 = milliseconds, 1000 = seconds). */
  IONQ_QUEUE_TIME_UNIT_MS: env.int(1, 1),
  TRACKER_DB_URL: env.optionalString(),
  TRACKER_SYNC_INTERVAL: env.duration('60s'),
  TRACKER_PRICE_PER_QUANTUM_SECOND: z.coerce.number().min(0).default(1.6),
  TRACKER_CURRENCY: z.string().min(1).max(8).default('USD'),
  TRACKER_API_TOKEN: env.optionalString(),
  MQTT_URL: env.optionalString(),
});

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  dbUrl: string;
  ibm?: { apiKey: string; instance: string; apiUrl: string; iamUrl: string };
  ionq?: { apiKey: string; apiUrl: string; queueTimeUnitMs: number };
  syncIntervalMs: number;
  pricePerQuantumSecond: number;
  currency: string;
  apiToken?: string;
  mqttUrl?: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
}

export function loadTrackerConfig(environment: NodeJS.ProcessEnv): Config {
  const e = loadConfig(envSchema, environment);
  if (e.IBM_QUANTUM_TOKEN && !e.IBM_QUANTUM_INSTANCE) {
    throw new ConfigError([
      'IBM_QUANTUM_INSTANCE: required with IBM_QUANTUM_TOKEN (the instance CRN, crn:v1:bluemix:public:quantum-computing:<region>:a/<account>:<id>::)',
    ]);
  }
  if (e.IBM_QUANTUM_INSTANCE && !e.IBM_QUANTUM_INSTANCE.startsWith('crn:')) {
    throw new ConfigError(['IBM_QUANTUM_INSTANCE: must be an instance CRN starting with crn:']);
  }
  requireTokenOffLoopback(e.HOST, e.TRACKER_API_TOKEN, 'TRACKER_API_TOKEN');
  const dataDir = path.resolve(e.DATA_DIR, 'quantum-tracker');
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir,
    dbUrl: e.TRACKER_DB_URL ?? path.join(dataDir, 'tracker.db'),
    ibm:
      e.IBM_QUANTUM_TOKEN && e.IBM_QUANTUM_INSTANCE
        ? {
            apiKey: e.IBM_QUANTUM_TOKEN,
            instance: e.IBM_QUANTUM_INSTANCE,
            apiUrl: e.IBM_QUANTUM_API_URL,
            iamUrl: e.IBM_IAM_URL,
          }
        : undefined,
    ionq: e.IONQ_API_KEY
      ? { apiKey: e.IONQ_API_KEY, apiUrl: e.IONQ_API_URL, queueTimeUnitMs: e.IONQ_QUEUE_TIME_UNIT_MS }
      : undefined,
    syncIntervalMs: e.TRACKER_SYNC_INTERVAL,
    pricePerQuantumSecond: e.TRACKER_PRICE_PER_QUANTUM_SECOND,
    currency: e.TRACKER_CURRENCY,
    apiToken: e.TRACKER_API_TOKEN,
    mqttUrl: e.MQTT_URL,
    logLevel: e.LOG_LEVEL,
  };
}

import path from 'node:path';
import {
  applySeedAliases,
  baseEnv,
  ConfigError,
  env,
  loadConfig,
  requireTokenOffLoopback,
  type SeedAlias,
} from '@qlab/kit';
import { z } from 'zod';
import { ibmEndpoints, isCrn } from './providers/ibm-endpoints';

export const envSchema = z.object({
  ...baseEnv(8000),
  /**
   * IBM Quantum Platform API key(s), exchanged at IAM for bearer tokens. Several keys of one
   * instance, comma-separated and optionally labelled (`alice:KEY,bob:KEY`): each sees only its
   * owner's jobs, so a lab lists every member's key to see all its jobs.
   */
  IBM_QUANTUM_TOKEN: env.optionalString(),
  /** The instance CRN (Service-CRN header); required with IBM_QUANTUM_TOKEN. */
  IBM_QUANTUM_INSTANCE: env.optionalString(),
  /** The seed's channel: ibm_quantum_platform or ibm_cloud (the same today); ibm_quantum is retired. */
  IBM_QUANTUM_CHANNEL: env.optionalString(),
  /** Default: derived from the CRN's region (ibm-endpoints.ts). */
  IBM_QUANTUM_API_URL: z.url().optional(),
  /** Default: derived from the CRN (staging instances use the staging IAM). */
  IBM_IAM_URL: z.url().optional(),
  /** Reach IBM over its private endpoints (private.<region>.quantum.cloud.ibm.com, private.iam.cloud.ibm.com). */
  IBM_QUANTUM_PRIVATE_ENDPOINT: env.bool(false),
  IONQ_API_KEY: env.optionalString(),
  IONQ_API_URL: z.url().default('https://api.ionq.co/v0.4'),
  /**
   * The unit of IonQ's average_queue_time, in ms (1 = milliseconds, 1000 = seconds). The v0.4
   * spec calls it the current wait time, types it "unix-timestamp" and gives 1181215 as the
   * example: about 20 minutes read as ms, two weeks as seconds, so ms is the default.
   */
  IONQ_QUEUE_TIME_UNIT_MS: env.int(1, 1),
  /** With it, usage comes from GET /organizations/{id}/usage (QPU time this month). */
  IONQ_ORGANIZATION_ID: env.optionalString(),
  /** IonQ's job list has no documented order: read it whole this often (between, stop at known jobs). */
  IONQ_FULL_SYNC_EVERY: env.duration('1h'),
  TRACKER_DB_URL: env.optionalString(),
  TRACKER_SYNC_INTERVAL: env.duration('60s'),
  /** Jobs re-read per sync for their times and final billing (IBM /metrics). */
  TRACKER_DETAILS_PER_SYNC: env.int(500, 0),
  TRACKER_PRICE_PER_QUANTUM_SECOND: z.coerce.number().min(0).default(1.6),
  TRACKER_CURRENCY: z.string().min(1).max(8).default('USD'),
  TRACKER_API_TOKEN: env.optionalString(),
  MQTT_URL: env.optionalString(),
});

/** One IBM API key: `label` names its sync account (`ibm` for the first, `ibm:<label>` for more). */
export interface IbmAccount {
  label: string;
  apiKey: string;
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  dbUrl: string;
  ibm?: { accounts: IbmAccount[]; instance: string; apiUrl: string; iamUrl: string };
  ionq?: {
    apiKey: string;
    apiUrl: string;
    queueTimeUnitMs: number;
    organizationId?: string;
    fullSyncEveryMs: number;
  };
  syncIntervalMs: number;
  detailsPerSync: number;
  pricePerQuantumSecond: number;
  currency: string;
  apiToken?: string;
  mqttUrl?: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  /** Seed variables that were read, as "SEED_NAME → QLAB_NAME" (logged at start). */
  aliasesUsed: string[];
}

/**
 * The seed's variables (its README's table) as aliases: the qlab name wins when both are set.
 * DEBUG=true means LOG_LEVEL=debug. LOG_LEVEL in any case is the kit's (baseEnv).
 */
const SEED_ALIASES: SeedAlias[] = [
  ['API_HOST', 'HOST'],
  ['API_PORT', 'PORT'],
  ['DATABASE_URL', 'TRACKER_DB_URL'],
];

function withSeedAliases(environment: NodeJS.ProcessEnv): { merged: NodeJS.ProcessEnv; used: string[] } {
  const { merged, used } = applySeedAliases(environment, SEED_ALIASES);
  if (/^(1|true|yes|on)$/i.test(environment.DEBUG ?? '') && !environment.LOG_LEVEL) {
    merged.LOG_LEVEL = 'debug';
    used.push('DEBUG → LOG_LEVEL=debug');
  }
  return { merged, used };
}

/** `KEY`, `KEY1,KEY2` or `alice:KEY1,bob:KEY2`: the first key is the account `ibm`. */
export function parseIbmKeys(value: string): IbmAccount[] {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const accounts = entries.map((entry, i) => {
    const colon = entry.indexOf(':');
    const label = colon > 0 ? entry.slice(0, colon) : i === 0 ? '' : String(i + 1);
    const apiKey = colon > 0 ? entry.slice(colon + 1) : entry;
    if (label !== '' && !/^[a-z0-9][a-z0-9_-]{0,31}$/i.test(label))
      throw new ConfigError([`IBM_QUANTUM_TOKEN: the label "${label}" must be 1-32 letters, digits, _ or -`]);
    if (apiKey === '') throw new ConfigError(['IBM_QUANTUM_TOKEN: an entry has no key after its label']);
    return { label, apiKey };
  });
  if (new Set(accounts.map((a) => a.label)).size !== accounts.length)
    throw new ConfigError(['IBM_QUANTUM_TOKEN: two keys have the same label']);
  return accounts;
}

function checkIbmChannel(channel: string | undefined): void {
  if (channel === undefined || channel === 'ibm_quantum_platform' || channel === 'ibm_cloud') return;
  if (channel === 'ibm_quantum')
    throw new ConfigError([
      'IBM_QUANTUM_CHANNEL: "ibm_quantum" (the classic IBM Quantum Platform, instances "hub/group/project") was retired by IBM in 2025; every instance is now an IBM Cloud one. Remove IBM_QUANTUM_CHANNEL (or set ibm_quantum_platform), set IBM_QUANTUM_TOKEN to an IBM Cloud API key and IBM_QUANTUM_INSTANCE to the instance CRN (crn:v1:bluemix:public:quantum-computing:…)',
    ]);
  throw new ConfigError([
    `IBM_QUANTUM_CHANNEL: "${channel}" is not a channel; use ibm_quantum_platform (or its alias ibm_cloud)`,
  ]);
}

export function loadTrackerConfig(environment: NodeJS.ProcessEnv): Config {
  const { merged, used } = withSeedAliases(environment);
  const e = loadConfig(envSchema, merged);
  checkIbmChannel(e.IBM_QUANTUM_CHANNEL);
  if (e.IBM_QUANTUM_TOKEN && !e.IBM_QUANTUM_INSTANCE) {
    throw new ConfigError([
      'IBM_QUANTUM_INSTANCE: required with IBM_QUANTUM_TOKEN (the instance CRN, crn:v1:bluemix:public:quantum-computing:<region>:a/<account>:<id>::)',
    ]);
  }
  if (e.IBM_QUANTUM_INSTANCE && !isCrn(e.IBM_QUANTUM_INSTANCE)) {
    throw new ConfigError([
      `IBM_QUANTUM_INSTANCE: "${e.IBM_QUANTUM_INSTANCE}" is not an instance CRN. The seed's default "ibm_quantum" and "hub/group/project" instances belonged to the classic platform IBM retired in 2025; copy the CRN (crn:v1:bluemix:public:quantum-computing:<region>:a/<account>:<instance>::) from your instance at quantum.cloud.ibm.com`,
    ]);
  }
  requireTokenOffLoopback(e.HOST, e.TRACKER_API_TOKEN, 'TRACKER_API_TOKEN');
  const dataDir = path.resolve(e.DATA_DIR, 'quantum-tracker');
  const endpoints = e.IBM_QUANTUM_INSTANCE
    ? ibmEndpoints(e.IBM_QUANTUM_INSTANCE, e.IBM_QUANTUM_PRIVATE_ENDPOINT)
    : undefined;
  if (endpoints?.staging && !e.IBM_QUANTUM_API_URL)
    throw new ConfigError([
      'IBM_QUANTUM_API_URL: required with a staging instance CRN (crn:v1:staging:…): the staging IAM would hand out tokens the production API host does not take. Give the staging API base URL',
    ]);
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir,
    dbUrl: e.TRACKER_DB_URL ?? path.join(dataDir, 'tracker.db'),
    ibm:
      e.IBM_QUANTUM_TOKEN && e.IBM_QUANTUM_INSTANCE && endpoints
        ? {
            accounts: parseIbmKeys(e.IBM_QUANTUM_TOKEN),
            instance: e.IBM_QUANTUM_INSTANCE.trim(),
            apiUrl: (e.IBM_QUANTUM_API_URL ?? endpoints.apiUrl).replace(/\/$/, ''),
            iamUrl: (e.IBM_IAM_URL ?? endpoints.iamUrl).replace(/\/$/, ''),
          }
        : undefined,
    ionq: e.IONQ_API_KEY
      ? {
          apiKey: e.IONQ_API_KEY,
          apiUrl: e.IONQ_API_URL.replace(/\/$/, ''),
          queueTimeUnitMs: e.IONQ_QUEUE_TIME_UNIT_MS,
          organizationId: e.IONQ_ORGANIZATION_ID,
          fullSyncEveryMs: e.IONQ_FULL_SYNC_EVERY,
        }
      : undefined,
    syncIntervalMs: e.TRACKER_SYNC_INTERVAL,
    detailsPerSync: e.TRACKER_DETAILS_PER_SYNC,
    pricePerQuantumSecond: e.TRACKER_PRICE_PER_QUANTUM_SECOND,
    currency: e.TRACKER_CURRENCY,
    apiToken: e.TRACKER_API_TOKEN,
    mqttUrl: e.MQTT_URL,
    logLevel: e.LOG_LEVEL,
    aliasesUsed: used,
  };
}

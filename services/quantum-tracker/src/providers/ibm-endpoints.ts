import { ConfigError } from '@qlab/kit';

/**
 * Where an IBM Quantum Platform instance is served, from its CRN
 * (`crn:v1:<cname>:public:quantum-computing:<region>:a/<account>:<instance>::`), as the
 * official client computes it (qiskit-ibm-runtime api/utils.py, default_runtime_url_resolver;
 * api/auth.py for IAM):
 * - us-east: https://quantum.cloud.ibm.com/api, any other region R: https://R.quantum.cloud.ibm.com/api;
 * - IAM: https://iam.cloud.ibm.com, or https://iam.test.cloud.ibm.com when the cname is `staging`.
 *   The client derives a staging instance's API host from the URL it is given; give it with
 *   IBM_QUANTUM_API_URL (config refuses a staging CRN without it).
 * - private endpoints (IBM_QUANTUM_PRIVATE_ENDPOINT): https://private.R.quantum.cloud.ibm.com/api
 *   for every region R, and https://private.iam.cloud.ibm.com (api/utils.py, api/auth.py).
 * The official client takes anything starting with `crn:` and reads the region from the 6th
 * field; so does this, after trimming, as long as the service is quantum-computing.
 */
export interface IbmEndpoints {
  region: string;
  staging: boolean;
  apiUrl: string;
  iamUrl: string;
}

/** crn:v1:<cname>:<ctype>:quantum-computing:<region>:<scope>:<instance>[:<type>[:<resource>]] */
const CRN = /^crn:v1:([^:]+):[^:]*:quantum-computing:([^:]+):[^:]*:[^:]*(:[^:]*){0,2}$/;

export function isCrn(value: string): boolean {
  return CRN.test(value.trim());
}

export function ibmEndpoints(crnValue: string, privateEndpoint = false): IbmEndpoints {
  const crn = crnValue.trim();
  const m = CRN.exec(crn);
  if (!m)
    throw new ConfigError([
      `IBM_QUANTUM_INSTANCE: "${crn}" is not an instance CRN (crn:v1:bluemix:public:quantum-computing:<region>:a/<account>:<instance>::; copy it from the instance page at quantum.cloud.ibm.com)`,
    ]);
  const [, cname, region] = m as unknown as [string, string, string];
  const staging = cname === 'staging';
  const iamHost = staging ? 'iam.test.cloud.ibm.com' : 'iam.cloud.ibm.com';
  return {
    region,
    staging,
    apiUrl: privateEndpoint
      ? `https://private.${region}.quantum.cloud.ibm.com/api`
      : `https://${region === 'us-east' ? '' : `${region}.`}quantum.cloud.ibm.com/api`,
    iamUrl: `https://${privateEndpoint ? 'private.' : ''}${iamHost}`,
  };
}

import { ConfigError } from '@qlab/kit';

/**
 * Where an IBM Quantum Platform instance is served, from its CRN
 * (`crn:v1:<cname>:public:quantum-computing:<region>:a/<account>:<instance>::`), as the
 * official client computes it (qiskit-ibm-runtime api/utils.py, default_runtime_url_resolver;
 * api/auth.py for IAM):
 * - us-east: https://quantum.cloud.ibm.com/api, any other region R: https://R.quantum.cloud.ibm.com/api;
 * - IAM: https://iam.cloud.ibm.com, or https://iam.test.cloud.ibm.com when the cname is `staging`.
 *   The client derives a staging instance's API host from the URL it is given; give it with
 *   IBM_QUANTUM_API_URL.
 */
export interface IbmEndpoints {
  region: string;
  staging: boolean;
  apiUrl: string;
  iamUrl: string;
}

const CRN = /^crn:v1:([^:]+):[^:]*:quantum-computing:([^:]+):[^:]*:[^:]*::?$/;

export function isCrn(value: string): boolean {
  return CRN.test(value);
}

export function ibmEndpoints(crn: string): IbmEndpoints {
  const m = CRN.exec(crn);
  if (!m)
    throw new ConfigError([
      `IBM_QUANTUM_INSTANCE: "${crn}" is not an instance CRN (crn:v1:bluemix:public:quantum-computing:<region>:a/<account>:<instance>::; copy it from the instance page at quantum.cloud.ibm.com)`,
    ]);
  const [, cname, region] = m as unknown as [string, string, string];
  const staging = cname === 'staging';
  return {
    region,
    staging,
    apiUrl: `https://${region === 'us-east' ? '' : `${region}.`}quantum.cloud.ibm.com/api`,
    iamUrl: staging ? 'https://iam.test.cloud.ibm.com' : 'https://iam.cloud.ibm.com',
  };
}

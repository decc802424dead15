import type { Config } from '../config';
import { IbmQuantumClient } from './ibm';
import { IonqClient } from './ionq';
import type { ProviderClient } from './types';

/**
 * The configured providers, one client per account; a new provider is one client file and one
 * line here. Several IBM keys of one instance are several accounts; only the first reads the
 * instance's backends (they are the same for all).
 */
export function providerClients(
  config: Pick<Config, 'ibm' | 'ionq'>,
  options: { fetch?: typeof fetch; now?: () => number } = {},
): ProviderClient[] {
  const clients: ProviderClient[] = [];
  const ibm = config.ibm;
  if (ibm) {
    for (const [i, a] of ibm.accounts.entries()) {
      clients.push(
        new IbmQuantumClient({
          apiKey: a.apiKey,
          account: a.label === '' ? 'ibm' : `ibm:${a.label}`,
          instance: ibm.instance,
          apiUrl: ibm.apiUrl,
          iamUrl: ibm.iamUrl,
          readsBackends: i === 0,
          ...options,
        }),
      );
    }
  }
  if (config.ionq) clients.push(new IonqClient({ ...config.ionq, ...options }));
  return clients;
}

import type { Config } from '../config';
import { IbmQuantumClient } from './ibm';
import { IonqClient } from './ionq';
import type { ProviderClient } from './types';

/** The configured providers; a new provider is one client file and one line here. */
export function providerClients(config: Pick<Config, 'ibm' | 'ionq'>): ProviderClient[] {
  const clients: ProviderClient[] = [];
  if (config.ibm) clients.push(new IbmQuantumClient(config.ibm));
  if (config.ionq) clients.push(new IonqClient(config.ionq));
  return clients;
}

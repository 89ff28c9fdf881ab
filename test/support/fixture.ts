import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The real strongSwan 5.9.8 exchange (see test/fixtures/strongswan-5.9.8-ecp384bp-demo/README.md). */
export const STRONGSWAN_DEMO = fileURLToPath(new URL('../fixtures/strongswan-5.9.8-ecp384bp-demo/', import.meta.url));
export const demoFile = (name: string): string => join(STRONGSWAN_DEMO, name);

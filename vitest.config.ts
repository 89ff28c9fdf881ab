import { defineConfig } from 'vitest/config';

/**
 * `npm test` runs the suite in two lanes at once (scripts/test-lanes.mjs), one vitest process
 * per project, each lane one file at a time. The "vm" lane holds the files that boot their own
 * machines or build images (User-Mode Linux guests, the container lab, the packaged install) and
 * the long strongSwan rekey run; everything else (unit tests and the network-namespace interop
 * tests) is the "netns" lane. The lanes share nothing: every file names its namespaces, TUN
 * devices, guests and containers with a suffix of its own. `npx vitest run` alone runs both
 * projects one after the other.
 */
export const VM_LANE = ['test/containers/**/*.test.ts', 'test/interop/uml-*.test.ts', 'test/packaging/**/*.test.ts', 'test/interop/rekey-strongswan.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    pool: 'forks',
    // within a lane, files run one after the other: interop files time rekeys and DPD on a 2-core machine
    maxWorkers: 1,
    projects: [
      { extends: true, test: { name: 'vm', include: VM_LANE } },
      { extends: true, test: { name: 'netns', include: ['test/**/*.test.ts'], exclude: VM_LANE } },
    ],
  },
});

#!/usr/bin/env node
/**
 * `npm run demo`: two network-namespace peers, SAs up, traffic through ESP,
 * status shown. The demo needs the IKE core, the datapath and the daemon; until
 * those land it says so and fails, instead of pretending.
 */
process.stderr.write(
  'tunsec demo: not yet available.\n' +
    'The two-peer demo (netns + veth, certificates, IKEv2, ESP over TUN) needs the IKE core,\n' +
    'the ESP datapath and the daemon, which have not landed yet. Nothing was started.\n' +
    'What works today: `npm test` (crypto vectors, IKEv2 codec against real strongSwan messages,\n' +
    'proposals, configuration) and `npm run bench` (handshake crypto costs).\n',
);
process.exitCode = 2;

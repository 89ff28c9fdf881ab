/**
 * The control socket's request handling under arbitrary lines and arbitrary
 * JSON requests (fast-check): one response line each, ok or a documented
 * error code, never `internal` (the control fuzz target's oracle).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { assertTargetHolds, mutatedCorpus, octets, readyTarget } from './support.js';

const COMMANDS = [
  'status',
  'list-sas',
  'list-conns',
  'check',
  'up',
  'down',
  'reload',
  'global-status',
  'global-down',
  'global-up',
  'sa-list',
  'sa-add',
  'sa-del',
  'rekey',
  'list-certs',
  'monitor',
  'nope',
  '__proto__',
  'toString',
];

describe('control protocol fuzzing properties', () => {
  it('every arbitrary line gets one JSON response with a documented error code, never an internal error', async () => {
    const { target, corpus } = await readyTarget('control');
    await assertTargetHolds(target, octets(300), 3000);
    await assertTargetHolds(target, mutatedCorpus(target, corpus), 3000);
  });

  it('arbitrary JSON requests for every command (ids, args and manual SA settings of any shape) get a response, never an internal error', async () => {
    const { target } = await readyTarget('control');
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom('10.9.0.1', 'fd00::1', '0x2001', 'aa'.repeat(20), 'yes', 'tunnel', 'aes256gcm16-esn', 4500, -1, 1e309),
    );
    const settings = fc.dictionary(
      fc.constantFrom('local_addr', 'remote_addr', 'spi_in', 'spi_out', 'key_in', 'key_out', 'mode', 'encap', 'esp_proposal', 'local_port', 'remote_port', 'x'),
      value,
    );
    const request = fc.record(
      {
        id: fc.oneof(fc.integer(), fc.string({ maxLength: 300 }), fc.constant(null), fc.double()),
        command: fc.constantFrom(...COMMANDS),
        args: fc.oneof(fc.record({ name: value, timeout: value, child: value, events: value, settings }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 1 })),
      },
      { requiredKeys: ['command'] },
    );
    await assertTargetHolds(
      target,
      request.map((r) => Buffer.from(JSON.stringify(r) ?? 'null')),
      3000,
    );
  });
});

/**
 * vici: one VICI transport segment (a packet without its length field) →
 * the packet and message parser (src/control/vici/) and, for a request that
 * parses, the command handlers tunsec answers swanctl with
 * (src/daemon/vici/commands.ts) over a daemon that was never started, with a
 * client registered for every streamed event.
 *
 * Acceptable: a ViciParseError; a packet whose message re-encodes and parses
 * back to the same tree; a handler answer that encodes as a CMD_RESPONSE, or a
 * ViciCommandError. Anything else (another exception, a round trip that
 * differs, an answer that cannot be encoded) is a crash.
 * Seeds: a request for every command swanctl sends, registrations, events.
 */
import { ViciParseError, encodeMessage, decodeMessage, messageToObject, type ViciInput } from '../../src/control/vici/message.js';
import { ViciPacketType, decodePacket, encodePacket } from '../../src/control/vici/packet.js';
import { controlCommands } from '../../src/daemon/control/commands.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { DaemonLogger } from '../../src/daemon/logger.js';
import { viciCommands } from '../../src/daemon/vici/commands.js';
import { ViciEventSource } from '../../src/daemon/vici/events.js';
import { ViciIds } from '../../src/daemon/vici/messages.js';
import { ViciCommandError, type ViciClient, type ViciCommand } from '../../src/daemon/vici/server.js';
import { featureOf, OracleViolation, type FuzzTarget } from '../lib/target.js';

let commands: Record<string, ViciCommand>;
const events: Buffer[] = [];
const client: ViciClient = {
  registered: () => true,
  event: (name, message) => void events.push(encodePacket({ type: ViciPacketType.EVENT, name, message })),
  closed: false,
};

const request = (name: string, message: ViciInput): Buffer => encodePacket({ type: ViciPacketType.CMD_REQUEST, name, message }).subarray(4);

export const target: FuzzTarget = {
  name: 'vici',
  kind: 'control',
  description: 'a VICI packet → the packet/message parser (round trip) and, for requests, the swanctl command handlers (idle daemon)',
  maxLength: 2048,
  dictionary: [
    'list-sas',
    'list-conns',
    'list-certs',
    'initiate',
    'terminate',
    'rekey',
    'version',
    'stats',
    'ike',
    'child',
    'ike-id',
    'child-id',
    'timeout',
    'loglevel',
    'noblock',
    'reauth',
    'force',
    'type',
    'flag',
    'subject',
    'X509',
    'ANY',
    'CA',
    '-1',
    '0',
    '4294967296',
    'yes',
  ]
    .map((s) => Buffer.from(s))
    .concat(
      [1, 2, 3, 4, 5, 6].map((t) => Buffer.from([t])),
      [Buffer.from([0xff, 0xff])],
    ),
  setup() {
    const quiet = new DaemonLogger({ json: true, write: () => {} });
    const daemon = new Daemon({ logger: quiet });
    const ids = new ViciIds();
    const source = new ViciEventSource({ listening: () => false, broadcast: () => {} }, ids);
    commands = viciCommands({ daemon, control: controlCommands(daemon), ids, events: source, log: quiet, version: 'fuzz' });
  },
  async run(data) {
    let packet;
    try {
      packet = decodePacket(data);
    } catch (err) {
      if (err instanceof ViciParseError) return featureOf('parse', err.message);
      throw err;
    }
    if (!('message' in packet)) return `packet:${ViciPacketType[packet.type]}`;
    // the parsed tree encodes and parses back to itself
    const tree = messageToObject(packet.message);
    const again = messageToObject(decodeMessage(encodeMessage(tree as ViciInput)));
    if (JSON.stringify(again) !== JSON.stringify(tree)) throw new OracleViolation('a message that does not survive encode → decode');
    if (packet.type !== ViciPacketType.CMD_REQUEST) return `message:${ViciPacketType[packet.type]}`;
    const command = Object.hasOwn(commands, packet.name) ? commands[packet.name] : undefined;
    if (!command) return 'unknown-command';
    events.length = 0;
    try {
      const reply = await command(packet.message, client);
      encodePacket({ type: ViciPacketType.CMD_RESPONSE, message: reply });
      return `ok:${packet.name}:${events.length > 0 ? 'events' : 'none'}`;
    } catch (err) {
      if (err instanceof ViciCommandError) return featureOf(`refused:${packet.name}`, err.message);
      throw err;
    }
  },
  seeds: () => [
    request('version', {}),
    request('stats', {}),
    request('list-sas', { noblock: 'yes', ike: 'moon-sun', 'ike-id': '1', child: 'net', 'child-id': '2' }),
    request('list-conns', { ike: 'moon-sun' }),
    request('list-certs', { type: 'X509', flag: 'CA', subject: 'C=CH, O=strongSwan, CN=moon' }),
    request('initiate', { child: 'net', ike: 'moon-sun', timeout: '5000', loglevel: '1' }),
    request('initiate', { ike: 'moon-sun', timeout: '-1' }),
    request('terminate', { ike: 'moon-sun', force: 'yes', timeout: '1000', loglevel: '1' }),
    request('terminate', { 'ike-id': '3' }),
    request('terminate', { child: 'net' }),
    request('rekey', { child: 'net' }),
    request('rekey', { ike: 'moon-sun', reauth: 'yes' }),
    request('rekey', { 'ike-id': 'x' }),
    request('load-conn', { 'moon-sun': { local_addrs: ['10.9.0.1'], children: { net: { local_ts: ['10.1.0.0/16'] } } } }),
    encodePacket({ type: ViciPacketType.EVENT_REGISTER, name: 'list-sa' }).subarray(4),
    encodePacket({ type: ViciPacketType.EVENT, name: 'ike-updown', message: { up: 'yes', 'moon-sun': { state: 'ESTABLISHED' } } }).subarray(4),
    encodePacket({ type: ViciPacketType.CMD_RESPONSE, message: { success: 'no', errmsg: 'x' } }).subarray(4),
  ],
};

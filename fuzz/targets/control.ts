/**
 * control: one request line of the control socket's JSON-lines protocol →
 * ControlServer's request handling (JSON, request shape, id, command lookup,
 * args) and the command handlers, without a socket or a live daemon: the
 * handlers are those of a daemon that was never started (`status`,
 * `list-sas`, `check`, `up`, … answer from its empty state or say
 * `unavailable`) and the manual-SA commands (`sa-add`, `sa-list`, `sa-del`)
 * over a real SAD, so `sa-add`'s settings reach the manual SA parser.
 *
 * Acceptable: a response object that serialises to one JSON line, with
 * ok: true, or ok: false and a documented error code other than `internal`
 * (an internal error is a handler that threw something unexpected: a bug);
 * no response only for a blank line.
 * Seeds: a request for every command, valid and with bad arguments (fuzz/seed.ts).
 */
import type { ControlErrorCode, ControlResponse } from '../../src/control/protocol.js';
import { controlCommands, type DaemonControl } from '../../src/daemon/control/commands.js';
import { ControlServer, type ControlHandler } from '../../src/daemon/control/server.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { DaemonLogger } from '../../src/daemon/logger.js';
import { ManualSas } from '../../src/daemon/manual.js';
import { SecurityAssociationDatabase } from '../../src/esp/sadb.js';
import { featureOf, OracleViolation, type FuzzTarget } from '../lib/target.js';

const CODES = new Set<ControlErrorCode>(['bad_json', 'bad_request', 'unknown_command', 'too_large', 'busy', 'not_found', 'failed', 'timeout', 'unavailable']);

let server: ControlServer;
let executions = 0;
const quiet = new DaemonLogger({ json: true, write: () => {} });

function handlers(): Record<string, ControlHandler> {
  const idle = controlCommands(new Daemon({ logger: quiet }));
  const manual = new ManualSas({ sad: new SecurityAssociationDatabase(), log: quiet, udpAvailable: () => true });
  const running = controlCommands({ phase: 'running', manual, connectionList: [] } as unknown as DaemonControl);
  return { ...idle, 'sa-add': running['sa-add']!, 'sa-list': running['sa-list']!, 'sa-del': running['sa-del']! };
}

function makeServer(): ControlServer {
  return new ControlServer({ path: '/nonexistent/fuzz.sock', log: quiet, handlers: handlers() });
}

type Answer = (raw: Buffer) => Promise<ControlResponse | undefined>;

export const target: FuzzTarget = {
  name: 'control',
  kind: 'control',
  description: 'a control-socket request line → ControlServer request handling and the command handlers (idle daemon; manual SAs over a real SAD)',
  maxLength: 4096,
  dictionary: [
    '{"id":1,"command":"',
    '","args":{',
    '}}',
    '"name":"',
    '"timeout":',
    '"settings":{',
    '"sa-add"',
    '"sa-del"',
    '"sa-list"',
    '"status"',
    '"list-sas"',
    '"list-conns"',
    '"check"',
    '"up"',
    '"down"',
    '"reload"',
    '"global-down"',
    '"global-up"',
    '"global-status"',
    '"local_addr":"10.9.0.1"',
    '"remote_addr":"10.9.0.2"',
    '"spi_in":"0x2001"',
    '"spi_out":"0x1001"',
    `"key_in":"${'aa'.repeat(20)}"`,
    `"key_out":"${'bb'.repeat(20)}"`,
    '"mode":"tunnel"',
    '"encap":"yes"',
    '"esp_proposal":"aes256gcm16-esn"',
    '"__proto__"',
    '"constructor"',
    '"toString"',
    'null',
    'true',
    '1e309',
    '-0',
    '[]',
    '{}',
    '\\u0000',
    '\\ud800',
    '"',
    ',',
    ':',
  ].map((s) => Buffer.from(s)),
  setup() {
    server = makeServer();
  },
  async run(data) {
    // a fresh SAD now and then: sa-add accumulates SAs
    if (++executions % 2048 === 0) server = makeServer();
    const answer = (server as unknown as { answer: Answer }).answer.bind(server);
    const response = await answer(data);
    if (response === undefined) {
      if (data.toString('utf8').trim() !== '') throw new OracleViolation('no response to a non-blank line');
      return 'blank';
    }
    const line = JSON.stringify(response);
    if (line.includes('\n')) throw new OracleViolation('a response that is not one line');
    const back = JSON.parse(line) as ControlResponse;
    if (back.ok)
      return `ok:${Object.keys((back.result as object | null) ?? {})
        .slice(0, 6)
        .join(',')}`;
    if (!CODES.has(back.code)) throw new OracleViolation(`response code '${back.code}': ${back.error}`);
    return back.code === 'bad_json' ? 'bad_json' : featureOf(back.code, back.error.slice(0, 24));
  },
};

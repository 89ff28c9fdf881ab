import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRootAndPrograms } from '../support/proc.js';
import { NetnsPair } from '../support/netns.js';
import { nativeAvailable } from '../../src/native/addon.js';
import { constants, dgramFd, formatAddr, getsockoptInt, setBufferSize, setsockoptInt } from '../../src/tun/raw-esp.js';
import { NsScript } from './helpers.js';

requireRootAndPrograms('raw ESP socket tests', ['ip']);
if (!nativeAvailable()) throw new Error('raw ESP socket tests: the native addon is not built (npm ci builds it)');

describe('socket options', () => {
  it('formats v4/v6 address slots', () => {
    const s = new Uint8Array(20);
    s[0] = 6;
    s.set([0xfd, 0x64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 4);
    expect(formatAddr(s)).toBe('fd64::2');
    s[0] = 4;
    s.set([10, 1, 2, 3], 4);
    expect(formatAddr(s)).toBe('10.1.2.3');
  });

  it('SO_MARK and forced buffers on a Node dgram socket fd', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    try {
      const fd = dgramFd(sock);
      const c = constants();
      setsockoptInt(fd, c.SOL_SOCKET, c.SO_MARK, 0x4242);
      expect(getsockoptInt(fd, c.SOL_SOCKET, c.SO_MARK)).toBe(0x4242);
      setBufferSize(fd, 'recv', 8 << 20);
      expect(getsockoptInt(fd, c.SOL_SOCKET, c.SO_RCVBUF)).toBeGreaterThanOrEqual(8 << 20);
      expect(() => setsockoptInt(fd, c.SOL_SOCKET, 0x7fff, 1)).toThrow(/^setsockopt\(1, 32767\): Protocol not available$/);
    } finally {
      sock.close();
    }
  });
});

describe('raw ESP between two netns', () => {
  let pair: NetnsPair;
  const scripts: NsScript[] = [];
  beforeAll(async () => {
    pair = await NetnsPair.create('te');
  });
  afterAll(async () => {
    for (const s of scripts) s.kill();
    await Promise.all(scripts.map((s) => s.exited));
    await pair?.destroy();
  });

  it('sends v4 (send + sendBatch) and v6 ESP, received with the right source and framing', async () => {
    const recv = NsScript.start(pair.b.ns, 'raw-esp.ts', ['recv', '15', '5']);
    scripts.push(recv);
    await recv.waitLine('READY');
    const send = NsScript.start(pair.a.ns, 'raw-esp.ts', ['send', pair.b.ip4, pair.b.ip6, '7']);
    scripts.push(send);
    expect(await send.waitLine('SENT')).toBe('SENT 5');
    await recv.waitLine('DONE');
    const pkts = recv.lines.filter((l) => l.startsWith('PKT ')).map((l) => JSON.parse(l.slice(4)) as Record<string, number | string>);
    const v4 = pkts.filter((p) => p.family === 4);
    const v6 = pkts.filter((p) => p.family === 6);
    expect(v4).toHaveLength(4);
    for (const p of v4) {
      expect(p.src).toBe(pair.a.ip4);
      expect(p.offset).toBe(20); // IPv4 raw sockets deliver the IP header
      expect(p.len).toBe(Number(p.espLen) + 20);
    }
    expect(v4.map((p) => [p.spi, p.seq, p.espLen])).toEqual([
      [0x1000, 1, 64],
      [0x1001, 10, 100],
      [0x1001, 11, 100],
      [0x1001, 12, 100],
    ]);
    expect(v6).toEqual([{ family: 6, src: pair.a.ip6, len: 80, offset: 0, spi: 0x2000, seq: 7, espLen: 80 }]);
  });
});

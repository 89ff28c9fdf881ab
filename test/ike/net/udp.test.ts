import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { UdpTransport, type ReceivedEspInUdp, type ReceivedIke } from '../../../src/ike/net/udp.js';

/** A 28-octet IKE header-shaped message (content is not parsed at this layer). */
const ike = Buffer.concat([Buffer.from('0102030405060708', 'hex'), Buffer.alloc(8), Buffer.from([0x21, 0x20, 0x22, 0x08]), Buffer.alloc(8)]);

function sendFrom(family: 'udp4' | 'udp6', to: string, port: number, data: Buffer): Promise<void> {
  const s = createSocket(family);
  return new Promise((resolve, reject) =>
    s.send(data, port, to, (err) => {
      s.close();
      if (err) reject(err);
      else resolve();
    }),
  );
}

describe('UDP transport for IKE (RFC 7296 §2.23, RFC 3948 §2.2)', () => {
  let t: UdpTransport | undefined;
  afterEach(() => t?.stop());

  async function start(addresses: string[]) {
    const got = { ike: [] as ReceivedIke[], esp: [] as ReceivedEspInUdp[], dropped: [] as string[] };
    t = new UdpTransport({ addresses, ikePort: 0, nattPort: 0 })
      .on('ike', (d) => got.ike.push(d))
      .on('esp', (d) => got.esp.push(d))
      .on('dropped', (r) => got.dropped.push(r));
    await t.start();
    const eps = t.boundEndpoints();
    const port500 = eps.find((e) => !e.natt)!.port;
    const port4500 = eps.find((e) => e.natt)!.port;
    return { got, port500, port4500 };
  }

  const settle = () => new Promise((r) => setTimeout(r, 50));

  it('on the NAT-T port, a message behind the non-ESP marker is IKE and arrives without the marker', async () => {
    const { got, port4500 } = await start(['127.0.0.1']);
    await sendFrom('udp4', '127.0.0.1', port4500, Buffer.concat([Buffer.alloc(4), ike]));
    await settle();
    expect(got.ike).toHaveLength(1);
    expect(got.ike[0]!.natt).toBe(true);
    expect(got.ike[0]!.message).toEqual(ike);
    expect(got.ike[0]!.local).toEqual({ address: '127.0.0.1', port: port4500 });
  });

  it('on the NAT-T port, a non-zero first word is ESP-in-UDP and a single 0xFF is a keepalive that is swallowed', async () => {
    const { got, port4500 } = await start(['127.0.0.1']);
    const esp = Buffer.from('c0ffee0100000001aabbccddeeff0011', 'hex');
    await sendFrom('udp4', '127.0.0.1', port4500, esp);
    await sendFrom('udp4', '127.0.0.1', port4500, Buffer.from([0xff]));
    await settle();
    expect(got.esp.map((e) => e.packet)).toEqual([esp]);
    expect(got.ike).toHaveLength(0);
    expect(got.dropped).toHaveLength(0);
  });

  it('datagrams too short to be IKE are dropped with a reason, not delivered', async () => {
    const { got, port500, port4500 } = await start(['127.0.0.1']);
    await sendFrom('udp4', '127.0.0.1', port500, Buffer.alloc(10));
    await sendFrom('udp4', '127.0.0.1', port4500, Buffer.alloc(12));
    await settle();
    expect(got.ike).toHaveLength(0);
    expect(got.dropped).toEqual(['short datagram on IKE port', 'short IKE message behind non-ESP marker']);
  });

  it('IKE over IPv6 arrives on port 500 without a marker, and replies from the NAT-T socket carry one', async () => {
    const { got, port500, port4500 } = await start(['::1']);
    await sendFrom('udp6', '::1', port500, ike);
    await settle();
    expect(got.ike).toHaveLength(1);
    expect(got.ike[0]!.natt).toBe(false);
    expect(got.ike[0]!.remote.address).toBe('::1');

    const peer = createSocket('udp6');
    await new Promise<void>((r) => peer.bind(0, '::1', () => r()));
    const received = new Promise<Buffer>((r) => peer.once('message', (m) => r(m)));
    t!.sendIke({ address: '::1', port: port4500 }, { address: '::1', port: peer.address().port }, ike);
    const m = await received;
    peer.close();
    expect(m.subarray(0, 4)).toEqual(Buffer.alloc(4));
    expect(m.subarray(4)).toEqual(ike);
  });

  it('a second transport cannot bind the same address and port, and says which', async () => {
    await start(['127.0.0.1']);
    const port = t!.boundEndpoints()[0]!.port;
    const other = new UdpTransport({ addresses: ['127.0.0.1'], ikePort: port, nattPort: 0 });
    await expect(other.start()).rejects.toThrow(`cannot bind UDP 127.0.0.1:${port}`);
  });
});

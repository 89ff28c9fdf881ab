/**
 * Loader and typings for the tunsec native addon (native/tunsec_native.cc and
 * native/tunsec_aead.cc, built by `node-gyp rebuild -C native` from the package's `install`
 * script into native/build/).
 *
 * A neutral leaf module: src/tun (TUN device, raw sockets) and src/crypto (AES-GCM) both load
 * the addon through here, so neither imports the other.
 *
 * The TUN/socket functions throw a JS Error on failure whose message is "<syscall>: <strerror>"
 * (e.g. "open /dev/net/tun: Operation not permitted") with `code` ("EPERM"), `errno` and
 * `syscall` set. Bad arguments throw TypeError.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativePoller {
  /** Start (or change) watching; `events` defaults to UV_READABLE. */
  start(events?: number): void;
  /** Stop watching; can be started again. */
  stop(): void;
  /** Release the uv handle; the poller cannot be used afterwards. Idempotent. */
  close(): void;
}

export interface NativeConstants {
  SOL_SOCKET: number;
  SO_MARK: number;
  SO_RCVBUF: number;
  SO_SNDBUF: number;
  SO_RCVBUFFORCE: number;
  SO_SNDBUFFORCE: number;
  SO_BINDTODEVICE: number;
  IPPROTO_IP: number;
  IPPROTO_IPV6: number;
  IPPROTO_UDP: number;
  IPPROTO_ESP: number;
  /** setsockopt level and option of UDP GRO (Linux 5.0); absent from older addon builds. */
  SOL_UDP?: number;
  UDP_GRO?: number;
  IP_TOS: number;
  IP_MTU_DISCOVER: number;
  IPV6_V6ONLY: number;
  UV_READABLE: number;
  UV_WRITABLE: number;
  /** TUNSETOFFLOAD flags (the `offloads` of tunOpen); absent from addon builds without offloads. */
  TUN_F_CSUM?: number;
  TUN_F_TSO4?: number;
  TUN_F_TSO6?: number;
  TUN_F_USO4?: number;
  TUN_F_USO6?: number;
}

/**
 * Counters of the offload calls, in the Int32Array (length >= 8) passed to readBatchVnet and
 * writeBatchVnet. Slots 0 and 1 are readBatchVnet's state (a super-packet not yet fully split:
 * its length in the scratch buffer, its next segment); the others count up and are meant to be
 * collected and zeroed by the caller after each call.
 */
export const OffloadStat = {
  PendingLength: 0,
  PendingNext: 1,
  /** GSO super-packets read and split. */
  GsoPackets: 2,
  /** Segments those super-packets made. */
  GsoSegments: 3,
  /** Packets read that could not be segmented (malformed, IPv6 extension headers, IPv4 source routes, …): dropped. */
  Refused: 4,
  /** Coalesced (GRO) super-packets written. */
  GroWrites: 5,
  /** Segments inside those super-packets. */
  GroSegments: 6,
} as const;

/**
 * The Int32Array `state` of udpRecvGro: a header, then `PerMsg` slots per datagram of the receive
 * area. Slots 0-2 are the split in progress (datagrams received, not yet split because the
 * caller's slots ran out); the counters count up and are meant to be collected and zeroed by the
 * caller after each call.
 */
export const GroState = {
  Held: 0,
  Next: 1,
  Offset: 2,
  /** Coalesced datagrams received (more than one segment). */
  Coalesced: 3,
  /** Segments inside those. */
  Segments: 4,
  /** Datagrams received, coalesced or not. */
  Datagrams: 5,
  /** Truncated datagrams and segments longer than their slot: dropped. */
  Dropped: 6,
  Header: 8,
  PerMsg: 8,
} as const;

/** One datagram's room in udpRecvGro's receive area (the largest UDP payload fits). */
export const GRO_DATAGRAM_ROOM = 65536;

/**
 * AES-GCM-16 key (RFC 4106 / RFC 5282 nonce = salt ‖ 8-octet explicit IV) held in OpenSSL EVP
 * contexts keyed once (OpenSSL inside the node binary). All operations work in place on one
 * Uint8Array. Argument errors throw TypeError (not a Uint8Array / not a number) or RangeError
 * (offset or length not a non-negative integer, or pointing outside `buf`); `aad` may be any
 * length and may alias `buf`.
 */
export interface NativeAeadKey {
  /**
   * Encrypt `buf[ptOff, ptOff+ptLen)` in place with nonce `salt ‖ buf[ivOff, ivOff+8)` and
   * write the 16-octet ICV at `buf[ptOff+ptLen]`.
   */
  seal(buf: Uint8Array, ivOff: number, aad: Uint8Array, ptOff: number, ptLen: number): void;
  /**
   * Decrypt `buf[ctOff, ctOff+ctLen)` in place (the ICV follows at `buf[ctOff+ctLen]`) and return
   * whether the ICV verified. On `false` the ciphertext area is restored to what it was (no
   * unauthenticated plaintext is left in `buf`). Never throws for bad data.
   */
  open(buf: Uint8Array, ivOff: number, aad: Uint8Array, ctOff: number, ctLen: number): boolean;
  /** Free the EVP contexts (OpenSSL cleanses the key schedule) and wipe the salt; later seal/open throw. Idempotent. */
  destroy(): void;
  /** Names this key to espSealBatch/espOpenBatch; never reused in a process, unknown once destroyed. Absent from older builds. */
  readonly handle?: number;
}

/** Slots per packet in the `desc` Uint32Array of espSealBatch / espOpenBatch. */
export const ESP_DESC_SLOTS = 10;

/** espSealBatch's `desc[i * ESP_DESC_SLOTS + k]`: what to seal for packet i (native/tunsec_esp.cc). */
export const EspSealDesc = {
  SrcOff: 0,
  PayloadLength: 1,
  NextHeader: 2,
  Key: 3,
  Spi: 4,
  SeqHigh: 5,
  SeqLow: 6,
  EspOff: 7,
  Flags: 8,
} as const;
/** EspSealDesc.Flags bits. */
export const ESP_SEAL_ESN = 1;
/** dst[i] holds a packet the JS path sealed: send it as it is. */
export const ESP_SEAL_PRESEALED = 2;

/** espSealBatch's `stats` Int32Array (added to). */
export const EspSealStat = {
  GsoSends: 0,
  GsoPackets: 1,
  /** Set to 1 when the kernel refused UDP GSO (EIO); the packets were sent one by one. */
  GsoRefused: 2,
  SealFailures: 3,
} as const;

/** espOpenBatch's `desc[i * ESP_DESC_SLOTS + k]`. */
export const EspOpenDesc = {
  EspOff: 0,
  EspEnd: 1,
  Key: 2,
  SeqHigh: 3,
  /** bit 0 ESN; bits 8-15 the mode (ESP_OPEN_MODE_*). */
  Flags: 4,
  Status: 5,
  NextHeader: 6,
  OutOff: 7,
  OutLength: 8,
} as const;
export const ESP_OPEN_MODE_PLAIN = 0;
/** Tunnel: the inner packet is moved to offset 0 of its buffer. */
export const ESP_OPEN_MODE_TUNNEL = 1;
/** IPv4 transport: the received IPv4 packet is decapsulated in place (RFC 4303 §3.1.1). */
export const ESP_OPEN_MODE_IPV4_TRANSPORT = 2;
/** EspOpenDesc.Status values. */
export const EspOpenStatus = {
  Ok: 0,
  Truncated: 1,
  Icv: 2,
  Padding: 3,
  Dummy: 4,
  /** Authenticated, but the inner packet is not what the mode expects. */
  Malformed: 5,
  NoKey: 6,
  /** The IPv4 packet around ESP is malformed (found before any ICV check). */
  FrameMalformed: 7,
} as const;

export interface NativeAddon {
  /**
   * Open /dev/net/tun (non-blocking, close-on-exec) with IFF_TUN|IFF_NO_PI[|IFF_MULTI_QUEUE]; with
   * `offload` also IFF_VNET_HDR and TUNSETOFFLOAD (CSUM|TSO4|TSO6, plus USO4|USO6 where the kernel
   * has them): `offloads` says which the kernel accepted (0 without `offload`). Every read and write
   * then carries a virtio_net_hdr: use readBatchVnet/writeBatchVnet.
   */
  tunOpen(name: string, multiQueue: boolean, offload?: boolean): { fd: number; name: string; offloads?: number };
  /**
   * Read a batch from an IFF_VNET_HDR TUN: super-packets (TSO/USO) are split into segments as the
   * kernel's GSO would make them, partial checksums completed; one segment per slot. `scratch` holds
   * the packet being split (>= 65545 octets); `stats` see OffloadStat. Absent from older builds.
   */
  readBatchVnet?: (fd: number, buffers: Uint8Array[], lengths: Int32Array, scratch: Uint8Array, stats: Int32Array, maxReads?: number) => number;
  /**
   * Write `count` packets to an IFF_VNET_HDR TUN, TCP segments of one flow coalesced into GRO
   * super-packets (headers of coalesced packets are rewritten in `buffers`). Returns the packets
   * (segments) written. Absent from older builds.
   */
  writeBatchVnet?: (fd: number, buffers: Uint8Array[], lengths: Int32Array, count: number, stats: Int32Array) => number;
  /** The segmentation of readBatchVnet on one packet (virtio_net_hdr ‖ IP packet): segment count, or -1 if refused. */
  gsoSplit?: (packet: Uint8Array, length: number, buffers: Uint8Array[], lengths: Int32Array) => number;
  /** The coalescing of writeBatchVnet: what it would write (virtio_net_hdr ‖ IP packet each). */
  groCoalesce?: (buffers: Uint8Array[], lengths: Int32Array, count: number) => Buffer[];
  setMtu(ifname: string, mtu: number): void;
  setUp(ifname: string, up: boolean): void;
  /** One read() per buffer until EAGAIN or min(buffers, lengths) packets (or `maxReads` > 0 reads). Returns the count. */
  readBatch(fd: number, buffers: Uint8Array[], lengths: Int32Array, maxReads?: number): number;
  /** write() buffers[i].subarray(0, lengths[i]) for i < count; stops early on EAGAIN. */
  writeBatch(fd: number, buffers: Uint8Array[], lengths: Int32Array, count: number): number;
  closeFd(fd: number): void;
  /** fcntl(F_DUPFD_CLOEXEC): another descriptor for the same socket (its own uv_poll slot). */
  dupFd(fd: number): number;
  rawSocket(family: 4 | 6, protocol: number): number;
  udpSocket(family: 4 | 6): number;
  bind(fd: number, address: string, port?: number): void;
  setsockoptInt(fd: number, level: number, opt: number, value: number): void;
  getsockoptInt(fd: number, level: number, opt: number): number;
  bindToDevice(fd: number, ifname: string): void;
  /**
   * SO_PEERCRED of a connected AF_UNIX socket: the pid/uid/gid the peer had when it connected
   * (kernel-provided). Absent from addon builds that predate it (a stale native/build).
   */
  peerCred?: (fd: number) => { pid: number; uid: number; gid: number };
  /** Returns bytes sent, or -1 when the socket buffer is full (EAGAIN/ENOBUFS). */
  sendTo(fd: number, buf: Uint8Array, length: number, address: string, port?: number): number;
  /** sendmmsg to one destination; returns packets sent (fewer on EAGAIN/ENOBUFS). */
  sendBatch(fd: number, buffers: Uint8Array[], lengths: Int32Array, count: number, address: string, port?: number): number;
  /** recvmmsg(MSG_DONTWAIT); addrs: 20 bytes per packet [family(4|6), 0, portBE(2), addr(16)]. */
  recvBatch(fd: number, buffers: Uint8Array[], lengths: Int32Array, addrs: Uint8Array): number;
  /**
   * UDP GRO receive (native/tunsec_udp_gro.cc): recvmmsg into `area` (k × GRO_DATAGRAM_ROOM octets),
   * each datagram split at its UDP_GRO gso_size into the slots, one segment (the datagram a socket
   * without GRO would have delivered) per slot, addresses as recvBatch. `state` (GroState) carries
   * datagrams not yet split to the next call. Returns the segments. Absent from older builds.
   */
  udpRecvGro?: (fd: number, area: Uint8Array, state: Int32Array, buffers: Uint8Array[], lengths: Int32Array, addrs: Uint8Array) => number;
  /** The split of udpRecvGro on one datagram: segments of `gsoSize` octets (0: one), the last the rest. */
  udpGroSplit?: (datagram: Uint8Array, length: number, gsoSize: number, buffers: Uint8Array[], lengths: Int32Array) => number;
  /**
   * sd_notify(3): send `message` (newline-separated VAR=value lines) as one datagram to the
   * service manager's socket, `socketPath` as in $NOTIFY_SOCKET ('@' = abstract namespace).
   * Throws on failure. Absent from addon builds that predate native/tunsec_notify.cc.
   */
  notifySend?: (socketPath: string, message: string) => void;
  /**
   * Seal `count` ESP packets (AES-GCM-16 with AeadKey handles, IV = the 64-bit sequence number)
   * described by `desc` (EspSealDesc) from `src[i]` into `dst[i]`, lengths into `lengths`; with
   * `fd >= 0` send them to (address, port) with sendmmsg, with `gso` as UDP GSO datagrams.
   * Returns packets sent (fd >= 0) or sealed. See native/tunsec_esp.cc. Absent from older builds.
   */
  espSealBatch?: (
    src: Uint8Array[],
    dst: Uint8Array[],
    lengths: Int32Array,
    desc: Uint32Array,
    count: number,
    fd: number,
    address: string,
    port: number,
    gso: number,
    stats: Int32Array,
  ) => number;
  /** Open `count` ESP packets in place (EspOpenDesc in and out). Returns how many opened. Absent from older builds. */
  espOpenBatch?: (bufs: Uint8Array[], desc: Uint32Array, count: number) => number;
  Poller: new (fd: number, cb: (err: Error | null, events: number) => void) => NativePoller;
  /**
   * `new AeadKey(key, salt)`: key 16, 24 or 32 octets, salt 4 octets (RangeError otherwise).
   * Absent from addon builds that predate native/tunsec_aead.cc (a stale native/build).
   */
  AeadKey?: new (key: Uint8Array, salt: Uint8Array) => NativeAeadKey;
  constants: NativeConstants;
}

let cached: NativeAddon | undefined;

/** Walk up from this module (src/native or dist/src/native) to the package root's native/build. */
function findAddon(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    for (const kind of ['Release', 'Debug']) {
      const p = join(dir, 'native', 'build', kind, 'tunsec_native.node');
      if (existsSync(p)) return p;
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error('tunsec native addon not built (native/build/Release/tunsec_native.node missing): run `npm ci` or `npx node-gyp rebuild -C native`');
}

export function loadNative(): NativeAddon {
  if (!cached) {
    const require = createRequire(import.meta.url);
    cached = require(findAddon()) as NativeAddon;
  }
  return cached;
}

/** Whether the addon can be loaded (for tests and capability reports). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

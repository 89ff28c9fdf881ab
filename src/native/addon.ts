/**
 * Loader and typings for the tunsec native addon (native/tunsec_native.cc and
 * native/tunsec_aead.cc, built by `node-gyp rebuild -C native` from the package's `install`
 * script into native/build/).
 *
 * A neutral leaf module: src/tun (TUN device, raw sockets) and src/crypto (AES-GCM) both load
 * the addon through here, so neither imports the other. src/tun/native.ts re-exports it.
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
  IP_TOS: number;
  IP_MTU_DISCOVER: number;
  IPV6_V6ONLY: number;
  UV_READABLE: number;
  UV_WRITABLE: number;
}

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
}

export interface NativeAddon {
  /** Open /dev/net/tun (non-blocking, close-on-exec) with IFF_TUN|IFF_NO_PI[|IFF_MULTI_QUEUE]. */
  tunOpen(name: string, multiQueue: boolean): { fd: number; name: string };
  setMtu(ifname: string, mtu: number): void;
  setUp(ifname: string, up: boolean): void;
  /** One read() per buffer until EAGAIN or min(buffers, lengths) packets. Returns the count. */
  readBatch(fd: number, buffers: Uint8Array[], lengths: Int32Array): number;
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
   * sd_notify(3): send `message` (newline-separated VAR=value lines) as one datagram to the
   * service manager's socket, `socketPath` as in $NOTIFY_SOCKET ('@' = abstract namespace).
   * Throws on failure. Absent from addon builds that predate native/tunsec_notify.cc.
   */
  notifySend?: (socketPath: string, message: string) => void;
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

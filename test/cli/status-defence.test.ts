/**
 * `tunsec status` shows the IKE responder's denial-of-service state (issue 9)
 * once there is something to show, and nothing extra on a quiet daemon.
 */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/commands/status.js';
import type { IkeDefenceStatus, StatusResult } from '../../src/control/protocol.js';

const ike = (o: Partial<IkeDefenceStatus>): IkeDefenceStatus => ({
  half_open: 0,
  cookie_mode: false,
  cookies_sent: 0,
  cookies_rejected: 0,
  limit_drops: 0,
  half_open_timeouts: 0,
  peers: 0,
  fragment_bytes: 0,
  limits: {
    cookieThreshold: 10,
    halfOpenMax: 1024,
    halfOpenPerPeer: 16,
    halfOpenTimeoutMs: 30_000,
    initPerPeerPerSecond: 10,
    authPerPeerPerSecond: 10,
    peersMax: 4096,
    invalidSpiPerSecond: 10,
  },
  ...o,
});

const status = (defence: IkeDefenceStatus | undefined): StatusResult => ({
  daemon: {
    pid: 812,
    state: 'running',
    started: '2025-06-01T12:00:00.120Z',
    uptime: 192,
    control_socket: '/run/tunsec/tunsec.sock',
    datapath: 'userspace',
    global: { state: 'up', mode: 'drop', since: '2025-06-01T12:00:00.120Z', age: 192 },
    control: { clients: 1, connections: 1, requests: 1, bad_requests: 0, rejected_clients: 0, refused_peers: 0 },
    ...(defence ? { ike: defence } : {}),
  },
  connections: [],
});

describe('tunsec status and the IKE responder under attack', () => {
  it('prints an IKE responder line in COOKIE mode, with the cookies and drops', () => {
    const text = formatStatus(status(ike({ half_open: 10, cookie_mode: true, cookies_sent: 14991, limit_drops: 3, half_open_timeouts: 10 })));
    expect(text.split('\n')[1]).toBe(
      'IKE responder: COOKIE mode, 10 half-open (COOKIEs from 10, max 1024), 14991 COOKIEs sent, 0 rejected, 3 requests dropped by limits, 10 half-open timed out',
    );
  });

  it('stays quiet while nothing happened', () => {
    expect(formatStatus(status(ike({})))).not.toContain('IKE responder');
    expect(formatStatus(status(undefined))).not.toContain('IKE responder');
  });
});

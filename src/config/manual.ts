/**
 * `manual.sas`: static ESP SA pairs with their policies, like
 * `ip xfrm state add` + `ip xfrm policy add` — the userspace datapath used
 * without IKE (scripts, another IKE daemon, interop with the kernel's XFRM).
 * The same checks serve the configuration file (./load.ts, with line
 * numbers) and `tunsec sa add NAME key=value…` (src/daemon/manual.ts).
 *
 * Keys are secrets: they are held as hex text, never put into a message.
 */
import { z } from 'zod';
import { canonicalIp, ipFamily } from '../util/ip.js';
import { choice, field, integer, port, trafficSelectors, yesNo } from './fields.js';
import { type Parsed, bad, ok } from '../util/parsed.js';
import { MAX_REPLAY_WINDOW } from './schema.js';
import { zodMessage, describeValue } from './problems.js';
import type { TrafficSelectorConfig } from '../ike/ts/syntax.js';

/** One manual SA pair (an inbound and an outbound SA sharing a reqid) with its in/out policies. */
export interface ManualSaConfig {
  name: string;
  local_addr: string;
  remote_addr: string;
  spi_in: number;
  spi_out: number;
  mode: 'transport' | 'tunnel';
  /** UDP encapsulation (RFC 3948) and its ports; absent = raw ESP. */
  encap?: { local_port: number; remote_port: number };
  /** The canonical proposal, e.g. `aes128gcm16` or `aes256gcm16-esn`. */
  esp_proposal: string;
  key_bits: 128 | 192 | 256;
  esn: boolean;
  /** key ‖ 4-octet salt, lowercase hex (secret). */
  key_in: string;
  key_out: string;
  replay_window: number;
  /** Empty = `dynamic` (the SA's addresses). */
  local_ts: TrafficSelectorConfig[];
  remote_ts: TrafficSelectorConfig[];
  policy: 'private' | 'private-or-clear';
}

export interface ManualConfig {
  /** By SA name, in file order. */
  sas: Record<string, ManualSaConfig>;
}

/** A concrete IP address (no %any, no names). */
const address = () =>
  field((v): Parsed<string> => {
    const c = typeof v === 'string' ? canonicalIp(v.trim()) : undefined;
    return c === undefined ? bad(`expected an IP address, got ${describeValue(v)}`) : ok(c);
  });

/** An SPI: hex (`0x1000`) or decimal, 256..2^32−1 (RFC 4303 §2.1: 1–255 are reserved, 0 is never used). */
const spi = () =>
  field((v): Parsed<number> => {
    let n: number | undefined;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string') {
      const s = v.trim();
      if (/^0x[0-9a-f]{1,8}$/i.test(s)) n = Number.parseInt(s.slice(2), 16);
      else if (/^\d{1,10}$/.test(s)) n = Number(s);
    }
    if (n === undefined || !Number.isInteger(n)) return bad(`expected an SPI in hex (0x1000) or decimal, got ${describeValue(v)}`);
    if (n < 256 || n > 0xffffffff) return bad(`must be between 256 (0x100) and 4294967295 (0xffffffff); 1–255 are reserved (RFC 4303 §2.1), got ${n}`);
    return ok(n);
  });

const PROPOSAL = /^aes(128|192|256)gcm16(?:-(esn|noesn))?$/;

const espProposal = () =>
  field((v): Parsed<{ text: string; keyBits: 128 | 192 | 256; esn: boolean }> => {
    const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
    const m = PROPOSAL.exec(s);
    if (m === null) return bad(`manual SAs take one of aes128gcm16, aes192gcm16, aes256gcm16 (optionally -esn), got ${describeValue(v)}`);
    const keyBits = Number(m[1]) as 128 | 192 | 256;
    const esn = m[2] === 'esn';
    return ok({ text: `aes${keyBits}gcm16${esn ? '-esn' : ''}`, keyBits, esn });
  });

/** Key material as hex (`0x` prefix and `:` separators allowed); never echoed back in messages. */
const hexKey = () =>
  field((v): Parsed<string> => {
    if (typeof v === 'number') return bad('expected hex text, got a number: quote the key (YAML reads an unquoted 0x… as a number)');
    if (typeof v !== 'string') return bad(`expected hex text, got ${describeValue(v)}`);
    const s = v.trim().replace(/^0x/i, '').replaceAll(':', '');
    if (s === '' || !/^[0-9a-f]+$/i.test(s)) return bad('expected hex digits (optionally 0x-prefixed or separated by colons)');
    if (s.length % 2 !== 0) return bad(`expected whole octets, got ${s.length} hex digits`);
    return ok(s.toLowerCase());
  });

export const manualSaSchema = z.strictObject({
  local_addr: address(),
  remote_addr: address(),
  spi_in: spi(),
  spi_out: spi(),
  mode: choice(['transport', 'tunnel']).default('transport'),
  encap: yesNo().default(false),
  local_port: port().optional(),
  remote_port: port().optional(),
  esp_proposal: espProposal().default({ text: 'aes128gcm16', keyBits: 128, esn: false }),
  key_in: hexKey(),
  key_out: hexKey(),
  replay_window: integer(0, MAX_REPLAY_WINDOW).default(32),
  local_ts: trafficSelectors().optional(),
  remote_ts: trafficSelectors().optional(),
  policy: choice(['private', 'private-or-clear']).default('private'),
});

export const manualSchema = z.strictObject({
  sas: z.record(z.string(), z.unknown()).default({}),
});

/** The NAT-T port (RFC 3948), the default of both encapsulation ports. */
export const MANUAL_NATT_PORT = 4500;

export interface ManualProblem {
  /** The key under the SA's section ('' for the section itself). */
  key: string;
  message: string;
}

/** The checks across keys of one parsed SA section; the SA, or the problems. */
export function resolveManualSa(name: string, s: z.output<typeof manualSaSchema>): { sa?: ManualSaConfig; problems: ManualProblem[] } {
  const problems: ManualProblem[] = [];
  if (ipFamily(s.local_addr) !== ipFamily(s.remote_addr)) {
    problems.push({ key: 'remote_addr', message: `${s.remote_addr} and local_addr ${s.local_addr} are of different address families` });
  }
  const octets = s.esp_proposal.keyBits / 8 + 4;
  for (const key of ['key_in', 'key_out'] as const) {
    const got = s[key].length / 2;
    if (got !== octets)
      problems.push({
        key,
        message: `${s.esp_proposal.text} needs ${octets} octets (${s.esp_proposal.keyBits / 8}-octet key ‖ 4-octet salt, ${octets * 2} hex digits), got ${got}`,
      });
  }
  if (!s.encap) {
    for (const key of ['local_port', 'remote_port'] as const)
      if (s[key] !== undefined) problems.push({ key, message: 'only with encap: yes (the UDP ports of ESP-in-UDP)' });
  }
  if (s.spi_in === s.spi_out && s.local_addr === s.remote_addr) problems.push({ key: 'spi_out', message: 'equals spi_in' });
  if (problems.length > 0) return { problems };
  return {
    problems,
    sa: {
      name,
      local_addr: s.local_addr,
      remote_addr: s.remote_addr,
      spi_in: s.spi_in,
      spi_out: s.spi_out,
      mode: s.mode,
      ...(s.encap ? { encap: { local_port: s.local_port ?? MANUAL_NATT_PORT, remote_port: s.remote_port ?? MANUAL_NATT_PORT } } : {}),
      esp_proposal: s.esp_proposal.text,
      key_bits: s.esp_proposal.keyBits,
      esn: s.esp_proposal.esn,
      key_in: s.key_in,
      key_out: s.key_out,
      replay_window: s.replay_window,
      local_ts: s.local_ts ?? [],
      remote_ts: s.remote_ts ?? [],
      policy: s.policy,
    },
  };
}

/** SA names: they appear in logs and on the command line (as connection names). */
export const MANUAL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * One SA section outside a file (`tunsec sa add NAME key=value…`): the same
 * schema and checks as the file; problems as `manual.sas.NAME.key: message`.
 */
export function parseManualSa(name: string, raw: unknown): { ok: true; sa: ManualSaConfig } | { ok: false; problems: string[] } {
  const base = `manual.sas.${name}`;
  if (!MANUAL_NAME.test(name))
    return { ok: false, problems: [`${base}: '${name}' is not a valid SA name (letters, digits, '.', '_' and '-', starting with a letter or digit)`] };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, problems: [`${base}: expected a section (key: value pairs), got ${describeValue(raw)}`] };
  const r = manualSaSchema.safeParse(raw, { error: zodMessage });
  if (!r.success) {
    const problems: string[] = [];
    for (const issue of r.error.issues) {
      const at = [base, ...issue.path.map(String)].join('.');
      if (issue.code === 'unrecognized_keys')
        for (const key of issue.keys) problems.push(`${at}.${key}: unknown key (keys: ${Object.keys(manualSaSchema.shape).join(', ')})`);
      else problems.push(`${at}: ${issue.message}`);
    }
    return { ok: false, problems };
  }
  const resolved = resolveManualSa(name, r.data);
  if (!resolved.sa) return { ok: false, problems: resolved.problems.map((p) => `${base}.${p.key}: ${p.message}`) };
  return { ok: true, sa: resolved.sa };
}

/** SPIs used twice among `sas` (the SAD keys inbound and outbound SAs by SPI). */
export function duplicateSpis(sas: readonly ManualSaConfig[]): Array<{ name: string; key: 'spi_in' | 'spi_out'; other: string }> {
  const out: Array<{ name: string; key: 'spi_in' | 'spi_out'; other: string }> = [];
  for (const key of ['spi_in', 'spi_out'] as const) {
    const seen = new Map<number, string>();
    for (const sa of sas) {
      const other = seen.get(sa[key]);
      if (other !== undefined) out.push({ name: sa.name, key, other });
      else seen.set(sa[key], sa.name);
    }
  }
  return out;
}

/** A warning when a file holding manual SA keys is readable by group or others, else undefined. */
export function manualKeysPermissionWarning(path: string, mode: number): string | undefined {
  const m = mode & 0o777;
  if ((m & 0o077) === 0) return undefined;
  const who = [m & 0o070 ? 'group' : null, m & 0o007 ? 'others' : null].filter(Boolean).join(' and ');
  return `${path} holds manual SA keys and is accessible by ${who} (mode 0${m.toString(8)}); chmod 600 recommended`;
}

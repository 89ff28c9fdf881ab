/**
 * Policy groups, as Libreswan's opportunistic encryption has them: one file
 * per group in a directory (Libreswan's /etc/ipsec.d/policies/), named after
 * the group, holding one CIDR per line (`#` starts a comment, blank lines
 * are ignored). A destination belongs to the group with the longest prefix
 * holding it:
 * - `private`: only encrypted, never in the clear (a trap; dropped until an SA exists);
 * - `private-or-clear`: encrypted when negotiation succeeds, in the clear while it fails (counted);
 * - `clear-or-private`: we answer peers that negotiate, but never initiate;
 * - `block`: dropped;
 * - `clear`: always in the clear.
 * The three negotiating groups need credentials: a connection names its group
 * (`policy_group: private`) and takes its prefixes as remote_addrs.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type IpPrefix, longestMatch, parsePrefix } from '../util/prefix.js';

export const POLICY_GROUPS = ['private', 'private-or-clear', 'clear-or-private', 'block', 'clear'] as const;
export type PolicyGroupName = (typeof POLICY_GROUPS)[number];
/** The groups a connection negotiates for. */
export type NegotiatedGroup = Extract<PolicyGroupName, 'private' | 'private-or-clear' | 'clear-or-private'>;

export interface PolicyGroupEntry {
  prefix: IpPrefix;
  group: PolicyGroupName;
  /** Where it was read: `/etc/tunsec/policies/private:3`. */
  source: string;
}

export interface GroupFileProblem {
  file: string;
  line: number;
  message: string;
}

/** One group file's text: its prefixes and a problem per bad line. */
export function parseGroupFile(text: string, file: string, group: PolicyGroupName): { entries: PolicyGroupEntry[]; problems: GroupFileProblem[] } {
  const entries: PolicyGroupEntry[] = [];
  const problems: GroupFileProblem[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    if (/\s/.test(line)) {
      problems.push({ file, line: i + 1, message: `'${line}': one CIDR per line` });
      continue;
    }
    const r = parsePrefix(line);
    if (r.ok) entries.push({ prefix: r.value, group, source: `${file}:${i + 1}` });
    else problems.push({ file, line: i + 1, message: r.message });
  }
  return { entries, problems };
}

export interface PolicyGroups {
  dir: string;
  entries: PolicyGroupEntry[];
}

/**
 * Read the group files of `dir` (a missing file is an empty group; files of
 * other names are reported, as a misspelt group would otherwise be ignored).
 * The same prefix in two groups is a problem: which one wins would be a guess.
 */
export function loadPolicyGroups(dir: string): { groups: PolicyGroups; problems: GroupFileProblem[] } {
  const entries: PolicyGroupEntry[] = [];
  const problems: GroupFileProblem[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    return { groups: { dir, entries }, problems: [{ file: dir, line: 0, message: `cannot read the policy group directory: ${(err as Error).message}` }] };
  }
  for (const name of names) {
    if (!(POLICY_GROUPS as readonly string[]).includes(name) && !name.startsWith('.')) {
      problems.push({ file: join(dir, name), line: 0, message: `not a policy group (the groups are ${POLICY_GROUPS.join(', ')})` });
    }
  }
  for (const group of POLICY_GROUPS) {
    if (!names.includes(group)) continue;
    const file = join(dir, group);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push({ file, line: 0, message: `cannot read: ${(err as Error).message}` });
      continue;
    }
    const r = parseGroupFile(text, file, group);
    entries.push(...r.entries);
    problems.push(...r.problems);
  }
  const seen = new Map<string, PolicyGroupEntry>();
  for (const e of entries) {
    const other = seen.get(e.prefix.text);
    if (other && other.group !== e.group) {
      const [file, line] = splitSource(e.source);
      problems.push({ file, line, message: `${e.prefix.text} is in group ${other.group} too (${other.source})` });
    }
    seen.set(e.prefix.text, e);
  }
  return { groups: { dir, entries }, problems };
}

function splitSource(source: string): [string, number] {
  const i = source.lastIndexOf(':');
  return [source.slice(0, i), Number(source.slice(i + 1))];
}

/** The group of `address`: the one with the longest prefix holding it; undefined when none does. */
export function groupOf(groups: PolicyGroups, address: string): PolicyGroupName | undefined {
  return longestMatch(groups.entries, address)?.group;
}

/** The prefixes of one group. */
export function prefixesOf(groups: PolicyGroups, group: PolicyGroupName): IpPrefix[] {
  return groups.entries.filter((e) => e.group === group).map((e) => e.prefix);
}

/**
 * `tunsec config check FILE [--creds] [--json]`: every problem and warning of
 * a configuration file with its line and key path, then a one-line summary;
 * `--creds` also loads the certificates, keys and CAs as the daemon would.
 * Exit 0 valid, 1 invalid. With --json one object:
 *
 *   {"file":"…","valid":false,"errors":1,"warnings":0,
 *    "problems":[{"severity":"error","path":"connections.dc1.remote_addrs","message":"required","line":4,"column":3}],
 *    "connections":[]}
 */
import { describeProblem, loadConfig, type ConfigProblem, type TunsecConfig } from '../../config/index.js';
import { resolveCredentials } from '../../daemon/credentials.js';
import { keyFilePermissionWarning } from '../../pki/load.js';
import { EXIT, HELP_OPTION, parseArgs, usage, type CommandSpec, type Io } from './common.js';
import { plural } from '../../util/format.js';

export const configCommand: CommandSpec = {
  name: 'config',
  synopsis: 'check FILE [--creds] [--json]',
  summary: 'check a configuration file: every problem and warning, then a summary',
  description: `check FILE: parse and check a configuration file as the daemon would: every
problem and warning with its line and key path, then a one-line summary of the
connections. --creds also loads the certificates, keys and CAs. Exit 0 when it
is valid (warnings allowed), 1 when not. --json prints one object: file, valid,
errors, warnings, problems (severity, path, message, line, column) and the
connections.`,
  options: {
    creds: { type: 'boolean', help: 'also load certificates, private keys, CAs and CRLs' },
    json: { type: 'boolean', help: 'print the result as one JSON object' },
    ...HELP_OPTION,
  },
  subcommands: ['check'],
  positionals: 'file',
  run(args, io) {
    const sub = parseArgs(this, args).positionals[0];
    if (sub !== 'check') throw usage(this, sub === undefined ? "'config' needs a subcommand: check" : `unknown config subcommand '${sub}'`);
    const i = args.indexOf('check');
    return configCheck([...args.slice(0, i), ...args.slice(i + 1)], io);
  },
};

export interface ConfigCheckResult {
  file: string;
  valid: boolean;
  errors: number;
  warnings: number;
  problems: Array<Pick<ConfigProblem, 'severity' | 'path' | 'message'> & { line?: number; column?: number }>;
  connections: Array<{ name: string; local_addrs: string[]; remote_addrs: string[]; children: string[]; start: boolean }>;
}

/** `tunsec config check FILE [--creds] [--json]`: `args` are those after `config check`. */
export function configCheck(args: readonly string[], io: Io): number {
  const spec = configCommand;
  const parsed = parseArgs(spec, args);
  const positionals = parsed.positionals;
  if (positionals.length !== 1)
    throw usage(spec, positionals.length === 0 ? 'config check needs a FILE' : `config check takes one FILE, got ${positionals.length}`);
  const file = positionals[0]!;
  const json = parsed.values.json === true;
  const out: ConfigCheckResult = { file, valid: false, errors: 0, warnings: 0, problems: [], connections: [] };
  const text: string[] = [];
  const problem = (p: ConfigProblem): void => {
    out.problems.push({
      severity: p.severity,
      path: p.path,
      message: p.message,
      ...(p.line === undefined ? {} : { line: p.line }),
      ...(p.column === undefined ? {} : { column: p.column }),
    });
    if (p.severity === 'error') out.errors++;
    else out.warnings++;
    text.push(describeProblem(file, p));
  };
  const finish = (summary: string): number => {
    if (json) io.out(`${JSON.stringify(out, null, 2)}\n`);
    else io.out(`${[...text, summary].join('\n')}\n`);
    return out.valid ? EXIT.ok : EXIT.failed;
  };
  const r = loadConfig({ path: file });
  for (const p of r.ok ? r.warnings : r.error.problems) problem(p);
  if (!r.ok) return finish(`${file}: invalid: ${plural(out.errors, 'error')}, ${plural(out.warnings, 'warning')}`);
  if (parsed.values.creds === true) {
    const creds = resolveCredentials(r.config);
    for (const w of creds.warnings) problem({ severity: 'warning', path: '', message: w });
    for (const e of creds.errors) problem({ severity: 'error', path: '', message: e });
    if (creds.errors.length > 0) return finish(`${file}: invalid credentials: ${plural(creds.errors.length, 'error')}, ${plural(out.warnings, 'warning')}`);
  } else {
    // Without --creds the keys are not loaded, but loose permissions on key files are still worth a warning.
    for (const [name, secret] of Object.entries(r.config.secrets)) {
      const w = keyFilePermissionWarning(secret.file);
      if (w) problem({ severity: 'warning', path: `secrets.${name}`, message: w });
    }
  }
  out.valid = true;
  out.connections = Object.values(r.config.connections).map((c) => ({
    name: c.name,
    local_addrs: c.local_addrs,
    remote_addrs: c.remote_addrs,
    children: Object.keys(c.children),
    start: Object.values(c.children).some((ch) => ch.start_action.includes('start')),
  }));
  return finish(`${file}: OK${out.warnings ? ` (${plural(out.warnings, 'warning')})` : ''}: ${summary(r.config)}`);
}

function summary(config: TunsecConfig): string {
  const conns = Object.values(config.connections).map((c) => {
    const children = Object.values(c.children);
    const start = children.some((ch) => ch.start_action.includes('start')) ? ', start' : '';
    return `${c.name} (${c.local_addrs.join(',')} → ${c.remote_addrs.join(',')}, ${plural(children.length, 'child', 'children')}${start})`;
  });
  return `${plural(conns.length, 'connection')}${conns.length ? `: ${conns.join(', ')}` : ''}`;
}

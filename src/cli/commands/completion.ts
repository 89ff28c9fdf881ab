/**
 * `tunsec completion bash`: a bash completion script for tunsec, made from
 * the commands' own specs (verbs, subcommands, options and what their values
 * are). Connection and child names come from `tunsec completion names`,
 * which asks the running daemon (list-conns) and, when it cannot, reads the
 * configuration (-c FILE on the command line, else the default one).
 *
 *   source <(tunsec completion bash)        # this shell
 *   tunsec completion bash > /etc/bash_completion.d/tunsec
 */
import { loadConfig } from '../../config/index.js';
import type { ListConnsResult } from '../../control/protocol.js';
import { ControlRequestFailed, ControlUnreachable, DEFAULT_CONTROL_SOCKET, controlRequest } from '../control-client.js';
import { HELP_OPTION, parseArgs, stringOption, usage, type CommandSpec, type OptionSpec } from './common.js';
import { DEFAULT_CONFIG } from './daemon.js';

export function completionCommand(all: () => readonly CommandSpec[]): CommandSpec {
  return {
    name: 'completion',
    synopsis: 'bash | names connections|children [CONNECTION] [-s PATH] [-c FILE]',
    summary: 'print the bash completion script (source <(tunsec completion bash))',
    description: `bash: print a bash completion script for tunsec: verbs, subcommands, options,
files, and connection and child names. Load it with 'source <(tunsec completion bash)'
or install it as /usr/share/bash-completion/completions/tunsec.
names connections|children [CONNECTION]: the names the script completes, one per
line: from the running daemon (list-conns), else from the configuration
(-c FILE, default ${DEFAULT_CONFIG}).`,
    options: {
      socket: { type: 'string', short: 's', value: 'PATH', help: `the daemon's control socket (default ${DEFAULT_CONTROL_SOCKET})`, complete: 'file' },
      config: { type: 'string', short: 'c', value: 'FILE', help: `the configuration to read names from (default ${DEFAULT_CONFIG})`, complete: 'file' },
      ...HELP_OPTION,
    },
    subcommands: ['bash', 'names'],
    async run(args, io) {
      const parsed = parseArgs(this, args);
      const [what, ...rest] = parsed.positionals;
      if (what === 'bash') {
        if (rest.length > 0) throw usage(this, 'completion bash takes no arguments');
        io.out(bashCompletion(all()));
        return 0;
      }
      if (what === 'names') {
        const [kind, conn] = rest;
        if (kind !== 'connections' && kind !== 'children') throw usage(this, "completion names needs 'connections' or 'children'");
        const names = await namesFor(kind, conn, stringOption(parsed, 'socket'), stringOption(parsed, 'config'));
        if (names.length > 0) io.out(`${names.join('\n')}\n`);
        return 0;
      }
      throw usage(this, what === undefined ? "completion needs 'bash' or 'names'" : `unknown completion shell '${what}' (bash)`);
    },
  };
}

/** Connection names, or the children of `conn` (all children when undefined): the daemon's, else the configuration's. */
async function namesFor(kind: 'connections' | 'children', conn: string | undefined, socket: string | undefined, config: string | undefined): Promise<string[]> {
  let conns: Array<{ name: string; children: string[] }> | undefined;
  if (config === undefined || socket !== undefined) {
    try {
      const r = (await controlRequest(socket ?? DEFAULT_CONTROL_SOCKET, 'list-conns', {}, { timeoutMs: 2000 })) as ListConnsResult;
      conns = r.connections.map((c) => ({ name: c.name, children: c.children.map((ch) => ch.name) }));
    } catch (err) {
      if (!(err instanceof ControlUnreachable) && !(err instanceof ControlRequestFailed)) throw err;
    }
  }
  if (!conns) {
    const r = loadConfig({ path: config ?? DEFAULT_CONFIG });
    conns = r.ok ? Object.values(r.config.connections).map((c) => ({ name: c.name, children: Object.keys(c.children) })) : [];
  }
  if (kind === 'connections') return conns.map((c) => c.name);
  return [...new Set(conns.filter((c) => conn === undefined || c.name === conn).flatMap((c) => c.children))];
}

/** What completes the value of option `o`, as a bash command filling COMPREPLY. */
function valueCompletion(o: OptionSpec): string {
  if (o.complete === 'file') return 'COMPREPLY=( $(compgen -f -- "$cur") ); compopt -o filenames 2>/dev/null';
  if (o.complete === 'connection') return 'COMPREPLY=( $(compgen -W "$(_tunsec_names connections)" -- "$cur") )';
  if (o.complete === 'child') return 'COMPREPLY=( $(compgen -W "$(_tunsec_names children "$conn")" -- "$cur") )';
  if (Array.isArray(o.complete)) return `COMPREPLY=( $(compgen -W "${o.complete.join(' ')}" -- "$cur") )`;
  return 'COMPREPLY=()';
}

const shellWord = (s: string): string => s.replace(/[^A-Za-z0-9_,.:/@%+=-]/g, '');

export function bashCompletion(all: readonly CommandSpec[]): string {
  const verbs = all.map((c) => c.name).join(' ');
  const cases = all.map((c) => {
    const opts = Object.entries(c.options);
    const flags = opts.flatMap(([n, o]) => [`--${n}`, ...(o.short ? [`-${o.short}`] : [])]).join(' ');
    const valued = opts.filter(([, o]) => o.type === 'string');
    const valuePattern = valued.flatMap(([n, o]) => [`--${n}`, ...(o.short ? [`-${o.short}`] : [])]).join('|');
    const valueCases = valued
      .map(([n, o]) => `        ${[`--${n}`, ...(o.short ? [`-${o.short}`] : [])].join('|')}) ${valueCompletion(o)}; return ;;`)
      .join('\n');
    let positional: string;
    const sub = c.subcommands ? `if (( npos == 0 )); then COMPREPLY=( $(compgen -W "${c.subcommands.join(' ')}" -- "$cur") ); return; fi\n      ` : '';
    switch (c.positionals) {
      case 'connection':
        positional = `${sub}(( npos == 0 )) && COMPREPLY=( $(compgen -W "$(_tunsec_names connections)" -- "$cur") )`;
        break;
      case 'file':
        positional = `${sub}COMPREPLY=( $(compgen -f -- "$cur") ); compopt -o filenames 2>/dev/null`;
        break;
      case 'verb':
        positional = `${sub}(( npos == 0 )) && COMPREPLY=( $(compgen -W "${verbs}" -- "$cur") )`;
        break;
      default:
        positional = c.subcommands ? sub.trimEnd() : 'COMPREPLY=()';
    }
    return `    ${shellWord(c.name)})
      valued='${valuePattern}'
      _tunsec_positionals
      case "$prev" in
${valueCases || '        ---) ;;'}
      esac
      if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "${flags}" -- "$cur") ); return; fi
      ${positional}
      ;;`;
  });
  return `# bash completion for tunsec (made by 'tunsec completion bash'; regenerate it after an upgrade)
# verbs, subcommands, options, files, and connection and child names (from the running
# daemon's list-conns, else the configuration: 'tunsec completion names connections').

_tunsec_names() {
  local i where=()
  for (( i = 2; i < COMP_CWORD; i++ )); do
    case "\${COMP_WORDS[i]}" in
      -s|--socket|-c|--config) where+=( "\${COMP_WORDS[i]}" "\${COMP_WORDS[i+1]}" ) ;;
    esac
  done
  "\${COMP_WORDS[0]}" completion names "$@" "\${where[@]}" 2>/dev/null
}

# npos: positional words before the cursor (after the verb, skipping option values); conn: the first.
_tunsec_positionals() {
  local i w skip=0
  npos=0
  conn=
  for (( i = 2; i < COMP_CWORD; i++ )); do
    w="\${COMP_WORDS[i]}"
    if (( skip )); then skip=0; continue; fi
    if [[ "$w" == -* ]]; then
      [[ "$w" != *=* && -n "$valued" && "$w" =~ ^($valued)$ ]] && skip=1
      continue
    fi
    (( npos == 0 )) && conn="$w"
    (( npos++ ))
  done
}

_tunsec() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local verb="\${COMP_WORDS[1]}" valued npos conn
  COMPREPLY=()
  if (( COMP_CWORD == 1 )); then
    COMPREPLY=( $(compgen -W "${verbs} --help --version" -- "$cur") )
    return
  fi
  case "$verb" in
${cases.join('\n')}
  esac
}

complete -F _tunsec tunsec
`;
}

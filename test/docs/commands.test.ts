/**
 * The shell commands shown in README.md and docs/*.md work: each one that can
 * run here without side effects is run from the repository root and must exit 0.
 *
 * What counts as a command (the rule, kept honest both ways):
 * - every line of a fenced block tagged `sh`, `bash` or `shell` (a line ending
 *   in `\` continues on the next; `# …` after the command is a comment), and
 * - every `$ `-prefixed line of any other fenced block (`console` transcripts,
 *   untagged examples); the lines without `$ ` there are output or templates.
 * So a block that shows output must be tagged `console` and prefix its
 * commands with `$ `, and a new command in the docs cannot slip past this test.
 *
 * Every command is classified by RULES below, first match wins: either RUN,
 * or skipped with the reason it cannot run here without side effects (it
 * needs a running daemon, root and the network, installs packages, builds
 * images, or takes minutes). A command no rule matches fails the test, so
 * whoever adds one to the docs decides here whether it runs.
 * `tunsec …` is the installed command; from the checkout it is `npx tunsec …`
 * (package.json's bin, dist/ built by `npm ci`). Both are run here as that bin,
 * dist/src/cli/main.js, with this node: on a machine whose npx cache does not
 * hold the checkout yet, `npx tunsec` installs it there first, and that runs the
 * package's install script (node-gyp rebuild) in the checkout itself — which
 * removed native/build under the daemons of the other test lane.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');
const DOCS = [
  'README.md',
  ...readdirSync(join(REPO, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

const RUN = 'run';
/** Ordered: [pattern over the command, RUN or why it is not run here]. */
const RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^(npx )?tunsec (--help|help|version)$|^(npx )?tunsec help [a-z-]+$/, RUN],
  [/^source <\((npx )?tunsec completion bash\)$/, 'changes the reading shell; test/cli runs the completion script in bash'],
  [/^(npx )?tunsec config check (--creds )?examples\/tunsec\.yaml$/, RUN],
  [/^(npx )?tunsec config check (--creds )?\/etc\//, "reads a configuration on the operator's host"],
  [/^(npx )?tunsec daemon\b/, 'starts the daemon: TUN device, routes, sockets (root, side effects)'],
  [/^(npx )?tunsec (status|list-sas|list-conns|list-certs|check|up|down|rekey|monitor|reload|global|sa)\b/, 'talks to a running daemon'],
  [/\bsocat\b.*tunsec\.sock/, 'talks to a running daemon'],
  [/^swanctl --/, 'talks to a running daemon over VICI (test/interop/vici-swanctl.test.ts runs these)'],
  [/^npm ci\b/, 'installs packages (and system packages through scripts/setup-system.sh)'],
  [/^npm run (demo|bench|fuzz|soak)\b|^node --import tsx bench\//, 'root, network namespaces and minutes of running'],
  [/^npm run typecheck$|^npx vitest run\b|^node scripts\/test-lanes\.mjs\b/, 'part of npm test itself'],
  [/^((PURGE=1|TS_START=\w+|TUNSEC_CONTAINER_ENGINE=\w+) )*containers\/lab\.sh\b/, 'builds and starts containers (rootful podman or docker)'],
  [/^(docker|podman) /, 'builds or starts container images'],
  [
    /^dpkg -i |^npm pack$|^mkdir \/opt\/tunsec\b|^node_modules\/\.bin\/tunsec --version$/,
    'installs the package system-wide; test/packaging/package.test.ts builds, installs (into throwaway roots) and runs it',
  ],
  [/^(systemctl|journalctl) /, 'needs systemd as PID 1 with the unit installed (test/daemon/systemd.test.ts and systemd-analyze verify cover the unit)'],
  [/^WIRESHARK_CONFIG_DIR=\S+ tshark\b/, 'needs a capture and a key log of a running daemon'],
];

interface DocCommand {
  readonly file: string;
  readonly line: number;
  readonly command: string;
}

/** The commands of one Markdown file, by the rule in the header. */
export function commandsOf(file: string, text: string): DocCommand[] {
  const out: DocCommand[] = [];
  let fence: string | undefined;
  let pending: { line: number; parts: string[] } | undefined;
  text.split('\n').forEach((raw, i) => {
    const open = /^\s*```(\w*)\s*$/.exec(raw);
    if (open) {
      fence = fence === undefined ? open[1]! : undefined;
      return;
    }
    if (fence === undefined) return;
    const shell = ['sh', 'bash', 'shell'].includes(fence);
    let line = raw.trim();
    if (!pending) {
      if (line.startsWith('$ ')) line = line.slice(2);
      else if (!shell || line === '' || line.startsWith('#')) return;
    }
    line = line.replace(/\s+#\s.*$/, '').trim();
    const continues = line.endsWith('\\');
    const part = continues ? line.slice(0, -1).trim() : line;
    pending ??= { line: i + 1, parts: [] };
    pending.parts.push(part);
    if (!continues) {
      out.push({ file, line: pending.line, command: pending.parts.join(' ') });
      pending = undefined;
    }
  });
  return out;
}

function verdict(command: string): string | undefined {
  return RULES.find(([pattern]) => pattern.test(command))?.[1];
}

function runShell(command: string): Promise<{ code: number; output: string }> {
  const line = command.replace(/^(npx )?tunsec /, `'${process.execPath}' dist/src/cli/main.js `);
  return new Promise((resolve) => {
    execFile(
      'sh',
      ['-c', line],
      { cwd: REPO, timeout: 180_000, env: { ...process.env, npm_config_offline: 'true', NODE_NO_WARNINGS: '1' } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}${err && typeof err.code !== 'number' ? err.message : ''}` });
      },
    );
  });
}

const commands = DOCS.flatMap((f) => commandsOf(f, readFileSync(join(REPO, f), 'utf8')));
const where = (c: DocCommand): string => `${c.file}:${c.line}: ${c.command}`;

describe('the commands shown in README.md and docs/*.md', () => {
  it('the extraction finds the documented commands (README, daemon.md, containers.md) and nothing from output lines', () => {
    const texts = commands.map((c) => c.command);
    expect(texts).toContain('npx tunsec config check examples/tunsec.yaml');
    expect(texts).toContain('tunsec --help');
    expect(texts).toContain('docker run -d --name tunsec --cap-add NET_ADMIN --device /dev/net/tun -v /etc/tunsec:/etc/tunsec:ro tunsec');
    expect(texts).toContain('tunsec check; echo $?');
    expect(texts.some((t) => t.startsWith('{') || t.startsWith('to-sun'))).toBe(false);
    expect(commandsOf('x.md', '```console\n$ a \\\n  b\nout\n```\n```sh\nc  # note\n# only a comment\n```\nd\n').map((c) => c.command)).toEqual(['a b', 'c']);
  });

  it('every command is classified: run here, or skipped with a reason', () => {
    const unclassified = commands.filter((c) => verdict(c.command) === undefined).map(where);
    expect(unclassified, 'add a rule in test/docs/commands.test.ts for these').toEqual([]);
  });

  const runnable = commands.filter((c) => verdict(c.command) === RUN);
  it('at least the help, version and example configuration check are among the commands run', () => {
    expect(runnable.length).toBeGreaterThanOrEqual(4);
  });

  for (const c of runnable) {
    it(`${where(c)} exits 0`, async () => {
      const r = await runShell(c.command);
      expect(r.code, r.output).toBe(0);
    }, 200_000);
  }
});

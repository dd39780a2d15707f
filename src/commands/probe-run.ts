/** `smtpkit probe`: parse, probe, print (live on a terminal), set the exit code. */

import type { OptionValue } from "./option-values.ts";
import { formatProbeJson } from "./probe-json.ts";
import { parseProbeCommand } from "./probe-options.ts";
import {
  formatHostFooter,
  formatHostHeader,
  formatStage,
  formatSummary,
  styleFor,
  wantsColor,
} from "./probe-report.ts";
import { type ProbeHooks, runProbe } from "./probe-runner.ts";

function writer(stream: NodeJS.WriteStream): (lines: string[]) => void {
  return (lines) => {
    if (lines.length > 0) stream.write(`${lines.join("\n")}\n`);
  };
}

export async function runProbeCommand(
  target: string | undefined,
  options: Record<string, unknown>,
): Promise<void> {
  const command = await parseProbeCommand(target, options as Record<string, OptionValue>);
  if (command.interactive) {
    const { runInteractive } = await import("./probe-interactive.ts");
    process.exitCode = await runInteractive(command.settings, { verbose: command.verbose });
    return;
  }
  const json = command.output === "json";
  const out = json ? process.stderr : process.stdout;
  const style = styleFor(wantsColor(out.isTTY === true));
  const print = writer(out);
  const hooks: ProbeHooks = {};
  let hostsSeen = 0;
  if (command.verbose) hooks.transcript = (line) => print([style.dim(line)]);
  if (!json) {
    hooks.hostStarted = (host) => {
      if (command.settings.mx) print(formatHostHeader(host, style, hostsSeen++ === 0));
    };
    hooks.stageDone = (host, stage) => print(formatStage(host, stage, style));
    hooks.hostDone = (host) => print(formatHostFooter(host, style));
  }
  const report = await runProbe(command.settings, hooks);
  if (json) {
    process.stdout.write(formatProbeJson(report));
    const problems = [report.error, ...report.hosts.map((h) => h.error)].filter((e) => e !== null);
    for (const e of problems) process.stderr.write(`smtpkit: probe: ${e.stage}: ${e.message}\n`);
  } else {
    print(formatSummary(report, style));
  }
  process.exitCode = report.exitCode;
}

import type { ProbeReport } from "./probe-types.ts";

/**
 * The `--json` document: the report objects as they are, field names documented in the README (smtpkit probe, JSON document).
 * Indented, because people read it too; `jq -c` makes it one line.
 */
export function formatProbeJson(report: ProbeReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

import type { TranscriptLine } from "../core/client-session.ts";

/** A transcript line as the driver hands it out: the core's line plus how long the reply took. */
export interface ClientTranscriptLine extends TranscriptLine {
  /** For received lines: milliseconds since our last write. */
  elapsedMs?: number;
}

/**
 * swaks' notation, so people who know swaks can read it (DESIGN.md): "<- " received, " -> "
 * sent, "<~ " and " ~> " inside TLS, "=== " information. Secrets are already masked.
 */
export function formatTranscriptLine(line: TranscriptLine): string {
  switch (line.direction) {
    case "received":
      return `${line.tls ? "<~ " : "<- "}${line.text}`;
    case "sent":
      return `${line.tls ? " ~> " : " -> "}${line.text}`;
    case "info":
      return `=== ${line.text}`;
  }
}

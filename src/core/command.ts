/**
 * SMTP commands: their type, and how a client writes them. A server reads them with
 * command-parser.ts, kept apart so that a client (a one-message `send`) does not load it.
 */
import { formatPath, type Path } from "./address.ts";
import { type EsmtpParam, formatEsmtpParams } from "./esmtp-params.ts";

export type Command =
  | { verb: "EHLO" | "HELO"; domain: string }
  | { verb: "MAIL"; path: Path; params: EsmtpParam[] }
  | { verb: "RCPT"; path: Path; params: EsmtpParam[] }
  | { verb: "DATA" }
  | { verb: "RSET" }
  | { verb: "QUIT" }
  | { verb: "STARTTLS" }
  | { verb: "NOOP"; argument?: string }
  | { verb: "HELP"; argument?: string }
  | { verb: "VRFY"; argument: string }
  | { verb: "EXPN"; argument: string }
  | { verb: "AUTH"; mechanism: string; initialResponse?: string }
  | { verb: "BDAT"; size: number; last: boolean };

export type Verb = Command["verb"];

/** `[\r\n\0]`: what would end a command line early, or smuggle a second one onto the wire. */
export function hasCrLfOrNul(text: string): boolean {
  return text.includes("\r") || text.includes("\n") || text.includes("\0");
}

function checkArgument(text: string): string {
  // A CR or LF here would let the caller smuggle a second command onto the wire.
  if (hasCrLfOrNul(text)) throw new Error(`command argument contains CR, LF or NUL: ${JSON.stringify(text)}`);
  return text;
}

/** The wire form of a command, CRLF included. Throws if an argument would inject a line break. */
export function formatCommand(cmd: Command): string {
  switch (cmd.verb) {
    case "EHLO":
    case "HELO":
      return `${cmd.verb} ${checkArgument(cmd.domain)}\r\n`;
    case "MAIL":
    case "RCPT": {
      const keyword = cmd.verb === "MAIL" ? "FROM:" : "TO:";
      const params = formatEsmtpParams(cmd.params);
      return (
        checkArgument(`${cmd.verb} ${keyword}${formatPath(cmd.path)}${params === "" ? "" : ` ${params}`}`) +
        "\r\n"
      );
    }
    case "DATA":
    case "RSET":
    case "QUIT":
    case "STARTTLS":
      return `${cmd.verb}\r\n`;
    case "NOOP":
    case "HELP":
      return cmd.argument === undefined
        ? `${cmd.verb}\r\n`
        : `${cmd.verb} ${checkArgument(cmd.argument)}\r\n`;
    case "VRFY":
    case "EXPN":
      return `${cmd.verb} ${checkArgument(cmd.argument)}\r\n`;
    case "AUTH":
      return cmd.initialResponse === undefined
        ? `AUTH ${checkArgument(cmd.mechanism)}\r\n`
        : `AUTH ${checkArgument(cmd.mechanism)} ${checkArgument(cmd.initialResponse)}\r\n`;
    case "BDAT":
      if (!Number.isSafeInteger(cmd.size) || cmd.size < 0)
        throw new RangeError(`BDAT size ${cmd.size} is not a size`);
      return cmd.last ? `BDAT ${cmd.size} LAST\r\n` : `BDAT ${cmd.size}\r\n`;
  }
}

/** A client's line during an AUTH exchange (RFC 4954 §4): base64 data, or "*" to cancel. */
export type SaslResponse = { cancel: true } | { cancel: false; data: string };

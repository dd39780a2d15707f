// Python's `email` package (policy=default) as an independent reader of messages we build.

import { join } from "node:path";
import { requirePeer } from "./require-peer.ts";
import { runProcess } from "./run-process.ts";

const PARSER_SCRIPT = join(import.meta.dir, "python_email_parse.py");
/** Generous for multi-megabyte attachments; a wedged interpreter fails the test instead of hanging it. */
const PARSE_TIMEOUT_MS = 60_000;

export interface ParsedHeader {
  name: string;
  /** Decoded by the policy: RFC 2047 encoded-words become Unicode, folding is undone. */
  value: string;
}

export interface ParsedPart {
  contentType: string;
  /** Decoded filename (RFC 2231 / RFC 2047), from Content-Disposition or Content-Type name. */
  filename: string | null;
  charset: string | null;
  /** "inline", "attachment" or null. */
  disposition: string | null;
  transferEncoding: string | null;
  headers: ParsedHeader[];
  /** Python's defect class names for this part and its headers (empty for a clean part). */
  defects: string[];
  /** The decoded content bytes (transfer encoding undone), base64; "" for message/* parts. */
  payloadBase64: string;
  /** For text/* parts: the content decoded with its charset. */
  text: string | null;
  /** Set when a text part's charset could not be applied. */
  textError?: string;
  /** message/rfc822: the enclosed message. */
  message?: ParsedMessage;
  /** message/delivery-status (RFC 3464): the per-message group, then one group per recipient. */
  statusGroups?: ParsedHeader[][];
}

export interface ParsedMessage {
  headers: ParsedHeader[];
  defects: string[];
  /** The MIME tree, e.g. "multipart/mixed(multipart/alternative(text/plain,text/html),application/pdf)". */
  structure: string;
  /** The leaves of the tree, in order (multipart containers are not listed). */
  parts: ParsedPart[];
}

/** The top-level result adds checks on the raw bytes. */
export interface PythonEmailResult extends ParsedMessage {
  size: number;
  /** Every byte is below 0x80. */
  sevenBit: boolean;
  nulBytes: number;
  /** Longest line in octets, line ends excluded (RFC 5322 §2.1.1: at most 998). */
  maxLineLength: number;
  /** LFs without a CR before them, and CRs without an LF after them. */
  bareLf: number;
  bareCr: number;
  endsWithCrlf: boolean;
}

/** Parses a message (its bytes, or its text as UTF-8) with Python's email package. */
export async function parseWithPythonEmail(message: Uint8Array | string): Promise<PythonEmailResult> {
  const python = requirePeer("python-email");
  const result = await runProcess([python, PARSER_SCRIPT], { stdin: message, timeoutMs: PARSE_TIMEOUT_MS });
  if (result.exitCode !== 0) {
    throw new Error(`python_email_parse.py failed (exit ${result.exitCode}):\n${result.stderr}`);
  }
  return JSON.parse(result.stdout) as PythonEmailResult;
}

/** The decoded bytes of a part. */
export function partBytes(part: ParsedPart): Uint8Array {
  return new Uint8Array(Buffer.from(part.payloadBase64, "base64"));
}

/** All values of a header, by case-insensitive name, in order. */
export function headerValues(from: { headers: ParsedHeader[] }, name: string): string[] {
  const wanted = name.toLowerCase();
  return from.headers.filter((header) => header.name.toLowerCase() === wanted).map((header) => header.value);
}

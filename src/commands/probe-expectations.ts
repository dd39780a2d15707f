/**
 * `--expect STAGE=CODE`: what a script asserts about a server. CODE is a full reply code (250),
 * a class or prefix padded with x (2xx, 25x) or not (2, 25), and several may be given with commas
 * (rcpt=250,251). Every reply seen at the stage must match one of them; a stage that was never
 * reached fails the expectation.
 */

import { UsageError } from "./exit-codes.ts";
import type { ExpectationReport } from "./probe-types.ts";

/** Stages that have replies to check, in the order the probe reaches them. */
export const EXPECT_STAGES = [
  "banner",
  "ehlo",
  "helo",
  "starttls",
  "auth",
  "mail",
  "rcpt",
  "rset",
  "quit",
] as const;
export type ExpectStage = (typeof EXPECT_STAGES)[number];

/** Other names people reach for. */
const STAGE_ALIASES: Readonly<Record<string, ExpectStage>> = {
  greeting: "banner",
  tls: "starttls",
};

export interface CodePattern {
  /** The leading digits that must match: "250", "25", "2". */
  prefix: string;
  /** As written, for messages. */
  text: string;
}

export interface Expectation {
  /** As given on the command line. */
  text: string;
  stage: ExpectStage;
  codes: CodePattern[];
}

/** RFC 5321 §4.2: a reply code is three digits, the first 2 to 5; x stands for "any digit". */
const CODE_PATTERN = /^([2-5]\d{0,2})(x{0,2})$/i;

export function parseCodePattern(text: string): CodePattern {
  const m = CODE_PATTERN.exec(text.trim());
  if (m === null || (m[1] ?? "").length + (m[2] ?? "").length > 3) {
    throw new UsageError(`--expect: '${text}' is not a reply code (e.g. 250, 2xx, 25x or 5)`);
  }
  return { prefix: m[1] ?? "", text: text.trim() };
}

export function parseExpectation(text: string): Expectation {
  const eq = text.indexOf("=");
  if (eq < 0) throw new UsageError(`--expect wants STAGE=CODE (e.g. rcpt=250), not '${text}'`);
  const name = text.slice(0, eq).trim().toLowerCase();
  const stage = (EXPECT_STAGES as readonly string[]).includes(name)
    ? (name as ExpectStage)
    : STAGE_ALIASES[name];
  if (stage === undefined) {
    throw new UsageError(`--expect: unknown stage '${name}'; stages are ${EXPECT_STAGES.join(", ")}`);
  }
  const codes = text
    .slice(eq + 1)
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");
  if (codes.length === 0) throw new UsageError(`--expect ${text}: no code after '='`);
  return { text, stage, codes: codes.map(parseCodePattern) };
}

export function codeMatches(pattern: CodePattern, code: number): boolean {
  return String(code).startsWith(pattern.prefix);
}

/** Checks each expectation against the reply codes seen at each stage. */
export function evaluateExpectations(
  expectations: readonly Expectation[],
  codesByStage: ReadonlyMap<ExpectStage, readonly number[]>,
): ExpectationReport[] {
  return expectations.map((expectation) => {
    const actual = [...(codesByStage.get(expectation.stage) ?? [])];
    const wanted = expectation.codes.map((c) => c.text).join(" or ");
    let reason = "";
    if (actual.length === 0) reason = `no ${expectation.stage} reply (stage not reached)`;
    else {
      const wrong = actual.filter((code) => !expectation.codes.some((p) => codeMatches(p, code)));
      if (wrong.length > 0) reason = `${expectation.stage} replied ${wrong.join(", ")}, expected ${wanted}`;
    }
    return { expectation: expectation.text, stage: expectation.stage, ok: reason === "", actual, reason };
  });
}

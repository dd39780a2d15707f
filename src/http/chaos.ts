/**
 * Fault injection for testing SMTP clients, in the spirit of smtp-sink's -f/-r flags and Mailpit's
 * chaos triggers: the server fails or delays chosen stages of a transaction. Set with
 * `--fail STAGE:CODE[:PROBABILITY]` and `--delay STAGE:MS`, or while running with PUT /api/v1/chaos.
 */

/** Where in a session a fault applies: on connect (the greeting), or in reply to a command; `dot` is the final reply after the data. */
export const CHAOS_STAGES = ["connect", "helo", "auth", "mail", "rcpt", "data", "dot"] as const;
export type ChaosStage = (typeof CHAOS_STAGES)[number];

export interface ChaosFailure {
  stage: ChaosStage;
  /** The reply code sent instead of the normal reply: 4xx or 5xx. */
  code: number;
  /** Chance of failing, in percent (0-100), as Mailpit counts it. */
  probability: number;
}

export interface ChaosDelay {
  stage: ChaosStage;
  /** How long to wait before replying at that stage. */
  ms: number;
}

export interface ChaosSettings {
  fail: ChaosFailure[];
  delay: ChaosDelay[];
}

/** A delay longer than RFC 5321's shortest server timeout (§4.5.3.2, 2 minutes for MAIL) only tests patience. */
export const MAX_CHAOS_DELAY_MS = 10 * 60 * 1000;
const DEFAULT_PROBABILITY = 100;

export class ChaosSettingsError extends Error {
  override name = "ChaosSettingsError";
}

export const NO_CHAOS: ChaosSettings = { fail: [], delay: [] };

/** Reads `--fail STAGE:CODE[:PROBABILITY]`, e.g. `rcpt:451` or `dot:554:25`. */
export function parseFailSpec(spec: string): ChaosFailure {
  const [stage, code, probability, ...rest] = spec.split(":");
  if (stage === undefined || code === undefined || rest.length > 0) {
    throw new ChaosSettingsError(`--fail wants STAGE:CODE[:PROBABILITY], got "${spec}"`);
  }
  return failure({
    stage,
    code: Number(code),
    probability: probability === undefined ? undefined : Number(probability),
  });
}

/** Reads `--delay STAGE:MS`, e.g. `data:2000`. */
export function parseDelaySpec(spec: string): ChaosDelay {
  const [stage, ms, ...rest] = spec.split(":");
  if (stage === undefined || ms === undefined || rest.length > 0) {
    throw new ChaosSettingsError(`--delay wants STAGE:MS, got "${spec}"`);
  }
  return delay({ stage, ms: Number(ms) });
}

/**
 * Validates the body of PUT /api/v1/chaos: our `{ fail, delay }`, or Mailpit's triggers
 * (`{ Sender, Recipient, Authentication }` of `{ ErrorCode, Probability }`), which replace the
 * failures of the mail, rcpt and auth stages in `current` and keep the rest.
 */
export function parseChaosSettings(body: unknown, current: ChaosSettings = NO_CHAOS): ChaosSettings {
  if (!isRecord(body)) throw new ChaosSettingsError("chaos settings must be a JSON object");
  const ours = "fail" in body || "delay" in body;
  const mailpit = MAILPIT_TRIGGERS.some(([key]) => key in body);
  if (ours && mailpit) throw new ChaosSettingsError("use either fail/delay or Mailpit's triggers, not both");
  if (mailpit) return fromMailpitTriggers(body, current);
  if (!ours) throw new ChaosSettingsError("chaos settings need fail and/or delay");
  return {
    fail: listOf(body.fail, "fail").map(failure),
    delay: listOf(body.delay, "delay").map(delay),
  };
}

function listOf(value: unknown, name: string): Record<string, unknown>[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every(isRecord))
    throw new ChaosSettingsError(`${name} must be an array of objects`);
  return value;
}

function failure(entry: Record<string, unknown>): ChaosFailure {
  const stage = stageOf(entry.stage);
  const code = entry.code;
  if (typeof code !== "number" || !Number.isInteger(code) || code < 400 || code > 599) {
    throw new ChaosSettingsError(`the failure code for ${stage} must be a 4xx or 5xx reply code`);
  }
  const probability = entry.probability ?? DEFAULT_PROBABILITY;
  if (typeof probability !== "number" || !(probability >= 0 && probability <= 100)) {
    throw new ChaosSettingsError(`the probability for ${stage} must be a percentage from 0 to 100`);
  }
  return { stage, code, probability };
}

function delay(entry: Record<string, unknown>): ChaosDelay {
  const stage = stageOf(entry.stage);
  const ms = entry.ms;
  if (typeof ms !== "number" || !Number.isInteger(ms) || ms < 0 || ms > MAX_CHAOS_DELAY_MS) {
    throw new ChaosSettingsError(
      `the delay for ${stage} must be whole milliseconds from 0 to ${MAX_CHAOS_DELAY_MS}`,
    );
  }
  return { stage, ms };
}

function stageOf(value: unknown): ChaosStage {
  const stage = CHAOS_STAGES.find((name) => name === value);
  if (!stage)
    throw new ChaosSettingsError(
      `unknown stage ${JSON.stringify(value)} (one of ${CHAOS_STAGES.join(", ")})`,
    );
  return stage;
}

/** Mailpit's trigger names, the stage each maps to, and Mailpit's default error code. */
const MAILPIT_TRIGGERS: readonly (readonly [string, ChaosStage, number])[] = [
  ["Sender", "mail", 451],
  ["Recipient", "rcpt", 451],
  ["Authentication", "auth", 535],
];

export interface MailpitTrigger {
  ErrorCode: number;
  Probability: number;
}

function fromMailpitTriggers(body: Record<string, unknown>, current: ChaosSettings): ChaosSettings {
  let fail = [...current.fail];
  for (const [key, stage, defaultCode] of MAILPIT_TRIGGERS) {
    const trigger = body[key];
    if (trigger === undefined) continue;
    if (!isRecord(trigger)) throw new ChaosSettingsError(`${key} must be an object`);
    const code = trigger.ErrorCode === undefined || trigger.ErrorCode === 0 ? defaultCode : trigger.ErrorCode;
    const probability = trigger.Probability ?? 0;
    fail = fail.filter((entry) => entry.stage !== stage);
    const entry = failure({ stage, code, probability });
    if (entry.probability > 0) fail.push(entry);
  }
  return { fail, delay: [...current.delay] };
}

/** The settings as Mailpit's GET /api/v1/chaos reports them, for Mailpit clients. */
export function toMailpitTriggers(settings: ChaosSettings): Record<string, MailpitTrigger> {
  const triggers: Record<string, MailpitTrigger> = {};
  for (const [key, stage, defaultCode] of MAILPIT_TRIGGERS) {
    const entry = settings.fail.find((candidate) => candidate.stage === stage);
    triggers[key] = { ErrorCode: entry?.code ?? defaultCode, Probability: entry?.probability ?? 0 };
  }
  return triggers;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

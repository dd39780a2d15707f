/**
 * Fault injection at run time: the settings (parsed from --fail/--delay or PUT /api/v1/chaos in
 * src/http/chaos.ts) applied at a stage of a session, as smtp-sink's -f/-r and Mailpit's chaos do.
 */
import { SmtpError } from "../core/errors.ts";
import { type ChaosSettings, type ChaosStage, NO_CHAOS } from "../http/chaos.ts";

/** Enhanced codes a client can act on: RFC 3463 X.3.0, other or undefined mail system status. */
function injected(code: number): SmtpError {
  return new SmtpError(code, `${Math.floor(code / 100)}.3.0`, "Injected failure (smtpkit chaos)");
}

export class Chaos {
  constructor(
    private settings: ChaosSettings = NO_CHAOS,
    private readonly random: () => number = Math.random,
  ) {}

  get current(): ChaosSettings {
    return this.settings;
  }

  set(settings: ChaosSettings): void {
    this.settings = settings;
  }

  /** True when nothing is configured, so hooks can return at once on the hot path. */
  get idle(): boolean {
    return this.settings.fail.length === 0 && this.settings.delay.length === 0;
  }

  /** Waits and/or throws as configured for `stage`. Probabilities are percentages, as Mailpit's. */
  async apply(stage: ChaosStage): Promise<void> {
    const delay = this.settings.delay.find((d) => d.stage === stage);
    if (delay && delay.ms > 0) await Bun.sleep(delay.ms);
    for (const failure of this.settings.fail) {
      if (failure.stage === stage && this.random() * 100 < failure.probability) throw injected(failure.code);
    }
  }
}

import {
  type ChaosSettings,
  ChaosSettingsError,
  NO_CHAOS,
  parseChaosSettings,
  toMailpitTriggers,
} from "./chaos.ts";
import { HttpError, HttpStatus, json, readJson } from "./responses.ts";
import type { Router } from "./router.ts";

export interface ChaosHooks {
  /** Applies new settings; the server owns them. Without it, chaos is off and PUT answers 400. */
  onChaos?: (settings: ChaosSettings) => void;
  getChaos?: () => ChaosSettings;
}

/**
 * GET and PUT /api/v1/chaos. The answer carries our `{ fail, delay }` and, beside it, Mailpit's
 * Sender/Recipient/Authentication triggers, so Mailpit's clients can read and set them too.
 */
export function registerChaosRoute(router: Router, hooks: ChaosHooks): void {
  let last: ChaosSettings = NO_CHAOS;
  const current = () => hooks.getChaos?.() ?? last;
  const view = (settings: ChaosSettings) => json({ ...settings, ...toMailpitTriggers(settings) });
  router
    .on("GET", "/api/v1/chaos", () => {
      if (!hooks.onChaos && !hooks.getChaos) throw notEnabled();
      return view(current());
    })
    .on("PUT", "/api/v1/chaos", async ({ request }) => {
      const apply = hooks.onChaos;
      if (!apply) throw notEnabled();
      let settings: ChaosSettings;
      try {
        settings = parseChaosSettings(await readJson(request), current());
      } catch (error) {
        if (error instanceof ChaosSettingsError) throw new HttpError(HttpStatus.badRequest, error.message);
        throw error;
      }
      apply(settings);
      last = settings;
      return view(settings);
    });
}

function notEnabled(): HttpError {
  return new HttpError(HttpStatus.badRequest, "chaos is not enabled on this server");
}

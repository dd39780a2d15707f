import type { MessageStore } from "../store/types.ts";
import { errorResponse, HttpStatus, json } from "./responses.ts";
import type { Router } from "./router.ts";

/** SMTP counters only the server knows; the store counts what it accepted. */
export interface SmtpStats {
  rejected: number;
  ignored?: number;
}

export interface StatusOptions {
  version: string;
  getSmtpStats?: () => SmtpStats;
  /** Whether PUT /api/v1/chaos is available (Mailpit's web UI configuration reports it). */
  chaosEnabled?: boolean;
}

/**
 * GET /api/v1/info (Mailpit's AppInformation), /api/v1/webui (its UI configuration),
 * /livez and /readyz.
 */
export function registerStatusRoutes(router: Router, store: MessageStore, options: StatusOptions): void {
  const startedAt = Date.now();
  router
    .on("GET", "/api/v1/info", async () => {
      const counts = await store.count();
      const stats = store.stats();
      const smtp = options.getSmtpStats?.();
      return json({
        Version: options.version,
        // Mailpit reports the newest release here; a local tool does not phone home.
        LatestVersion: "",
        Database: stats.path,
        DatabaseSize: stats.sizeBytes,
        Messages: counts.total,
        Unread: counts.unread,
        Tags: Object.fromEntries((await store.tags()).map((count) => [count.tag, count.messages])),
        RuntimeStats: {
          Uptime: Math.floor((Date.now() - startedAt) / 1000),
          Memory: process.memoryUsage().rss,
          MessagesDeleted: stats.deletedMessages,
          SMTPAccepted: stats.addedMessages,
          SMTPAcceptedSize: stats.addedBytes,
          SMTPRejected: smtp?.rejected ?? 0,
          SMTPIgnored: smtp?.ignored ?? 0,
        },
      });
    })
    .on("GET", "/api/v1/webui", () =>
      json({
        Label: "",
        MessageRelay: {
          Enabled: false,
          SMTPServer: "",
          ReturnPath: "",
          AllowedRecipients: "",
          BlockedRecipients: "",
          OverrideFrom: "",
          PreserveMessageIDs: false,
        },
        SpamAssassin: false,
        ChaosEnabled: options.chaosEnabled === true,
        DuplicatesIgnored: false,
        HideDeleteAllButton: false,
      }),
    )
    .on(
      "GET",
      "/livez",
      () => new Response("ok", { headers: { "Content-Type": "text/plain; charset=utf-8" } }),
    )
    .on("GET", "/readyz", async () => {
      try {
        await store.count();
        return new Response("ok", { headers: { "Content-Type": "text/plain; charset=utf-8" } });
      } catch (error) {
        return errorResponse(
          HttpStatus.unavailable,
          error instanceof Error ? error.message : "the store is not ready",
        );
      }
    });
}

/**
 * The per-delivery part of the document `send --json` prints. Loaded only for --json: a plain
 * `send` does not carry it.
 */
import type { DomainDelivery } from "../client/mx-delivery.ts";
import { formatPath } from "../core/address.ts";
import type { Reply } from "../core/reply.ts";

export interface ReplyJson {
  code: number;
  enhanced: string | null;
  text: string;
}

export function replyJson(reply: Reply | undefined): ReplyJson | null {
  if (!reply) return null;
  return { code: reply.code, enhanced: reply.enhanced ?? null, text: reply.lines.join("\n") };
}

export function deliveryJson(delivery: DomainDelivery) {
  const client = delivery.client;
  const result = delivery.result;
  return {
    domain: delivery.domain || null,
    server: client
      ? {
          host: delivery.host?.exchange ?? null,
          address: client.remoteAddress,
          port: client.remotePort,
          family: client.family,
        }
      : null,
    tls: client?.tls
      ? {
          protocol: client.tls.protocol,
          cipher: client.tls.cipher,
          verified: client.tls.authorized,
          ...(client.tls.pinned ? { pinned: true } : {}),
        }
      : null,
    stages: (client?.stages ?? []).map((s) => ({
      stage: s.stage,
      reply: replyJson(s.reply),
      ms: Math.round(s.ms * 10) / 10,
    })),
    method: result?.method ?? null,
    recipients: delivery.recipients.map((recipient, i) => {
      const outcome = result?.recipients[i];
      return {
        address: formatPath(recipient.path).slice(1, -1),
        accepted: outcome?.accepted ?? false,
        reply: replyJson(outcome?.reply),
      };
    }),
    mail: replyJson(result?.mail),
    data: replyJson(result?.data ?? result?.bdat.at(-1)),
    final: replyJson(result?.final),
    failedStage: result?.failedStage ?? delivery.error?.stage ?? null,
    attempts: delivery.attempts.map((a) => ({ host: a.host, error: a.error.message })),
    error: delivery.error
      ? { kind: delivery.error.kind, message: delivery.error.message, reply: replyJson(delivery.error.reply) }
      : null,
    warnings: result?.warnings ?? [],
    ms: result ? Math.round(result.ms * 10) / 10 : null,
  };
}

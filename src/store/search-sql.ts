import type { AddressField, SearchTerm } from "./search-query.ts";

/** A WHERE clause over the `messages` table and its parameters. */
export interface SqlCondition {
  sql: string;
  params: (string | number)[];
}

const ADDRESS_COLUMNS: Record<AddressField, readonly string[]> = {
  from: ["from_search"],
  to: ["to_search"],
  cc: ["cc_search"],
  bcc: ["bcc_search"],
  "reply-to": ["reply_to_search"],
  addressed: ["from_search", "to_search", "cc_search", "bcc_search", "reply_to_search"],
};

/**
 * Every term must hold. The *_search columns are stored lower-cased, so lower-casing the needle
 * makes matching case-insensitive beyond ASCII (SQLite's LIKE folds ASCII only).
 */
export function searchCondition(terms: readonly SearchTerm[]): SqlCondition {
  const parts: string[] = [];
  const params: (string | number)[] = [];
  for (const term of terms) {
    const condition = termCondition(term);
    parts.push(condition.sql);
    params.push(...condition.params);
  }
  return { sql: parts.length > 0 ? parts.join(" AND ") : "1", params };
}

function termCondition(term: SearchTerm): SqlCondition {
  switch (term.kind) {
    case "address": {
      const columns = ADDRESS_COLUMNS[term.field];
      return negatable(anyLike(columns, term.value), term.negate);
    }
    case "subject":
      return negatable(anyLike(["subject_search"], term.value), term.negate);
    case "message-id":
      return negatable(anyLike(["message_id"], term.value), term.negate);
    case "text":
      return negatable(anyLike(["header_search", "search_text"], term.value), term.negate);
    case "read":
      return { sql: term.read ? "read = 1" : "read = 0", params: [] };
    case "attachment":
      return { sql: term.present ? "attachments > 0" : "attachments = 0", params: [] };
    case "inline":
      return { sql: term.present ? "inline > 0" : "inline = 0", params: [] };
    case "tag":
      // The column compares without regard to case (schema.ts).
      return negatable(
        {
          sql: "EXISTS (SELECT 1 FROM message_tags t WHERE t.seq = m.seq AND t.tag = ?)",
          params: [term.value],
        },
        term.negate,
      );
    case "tagged":
      return negatable(
        { sql: "EXISTS (SELECT 1 FROM message_tags t WHERE t.seq = m.seq)", params: [] },
        term.negate,
      );
    case "received":
      return negatable(
        { sql: term.op === "after" ? "created >= ?" : "created <= ?", params: [term.at] },
        term.negate,
      );
    case "size":
      return negatable(
        { sql: term.op === "larger" ? "size > ?" : "size < ?", params: [term.bytes] },
        term.negate,
      );
  }
}

function anyLike(columns: readonly string[], value: string): SqlCondition {
  const pattern = `%${escapeLike(value.toLowerCase())}%`;
  return {
    sql: `(${columns.map((column) => `${column} LIKE ? ESCAPE '\\'`).join(" OR ")})`,
    params: columns.map(() => pattern),
  };
}

function negatable(condition: SqlCondition, negate: boolean): SqlCondition {
  return negate ? { sql: `NOT (${condition.sql})`, params: condition.params } : condition;
}

export function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (char) => `\\${char}`);
}

/**
 * Message tags, kept as Mailpit keeps them: a name is letters, digits, "-", ".", "_" and spaces
 * (other characters are dropped, runs of spaces become one) and is matched without regard to case.
 * A message gets the tags of its X-Tags header (comma-separated) when its header summary is made;
 * the API sets, renames and removes them afterwards.
 */
import type { Database, Statement } from "bun:sqlite";

export interface TagCount {
  tag: string;
  messages: number;
}

export function cleanTag(text: string): string {
  return text
    .replace(/[^A-Za-z0-9\-._ ]/g, "")
    .replace(/ {2,}/g, " ")
    .trim();
}

/** Cleaned, without empty names or repeats (ignoring case), in the order given. */
export function cleanTags(texts: readonly string[]): string[] {
  const seen: string[] = [];
  const tags: string[] = [];
  for (const text of texts) {
    const tag = cleanTag(text);
    const key = tag.toLowerCase();
    if (tag === "" || seen.includes(key)) continue;
    seen.push(key);
    tags.push(tag);
  }
  return tags;
}

/** The tags an X-Tags header value names. */
export function xTags(value: string | undefined): string[] {
  return value === undefined ? [] : cleanTags(value.split(","));
}

/** Mailpit's UI order: by name, ignoring case. */
export function compareTags(a: string, b: string): number {
  return a.toLowerCase().localeCompare(b.toLowerCase());
}

/** The message_tags table (schema.ts): one row per message and tag. */
export class TagTable {
  readonly #db: Database;
  readonly #insert: Statement;

  constructor(db: Database) {
    this.#db = db;
    // A message deleted before its tags were written gets none, even if a new one took its seq.
    this.#insert = db.prepare(
      `INSERT OR IGNORE INTO message_tags (seq, tag)
       SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM messages WHERE seq = ?1 AND id = ?3)`,
    );
  }

  /** Adds tags to the message with this seq and ID; call inside the caller's transaction. */
  add(seq: number, id: string, tags: readonly string[]): void {
    for (const tag of tags) this.#insert.run(seq, tag, id);
  }

  /** Replaces the tags of the messages with these IDs; returns how many of them exist. */
  replace(ids: readonly string[], tags: readonly string[]): number {
    const seqOf = this.#db.query<{ seq: number }, [string]>("SELECT seq FROM messages WHERE id = ?");
    const clear = this.#db.query("DELETE FROM message_tags WHERE seq = ?");
    let found = 0;
    this.#db.transaction(() => {
      for (const id of ids) {
        const row = seqOf.get(id);
        if (!row) continue;
        found++;
        clear.run(row.seq);
        this.add(row.seq, id, tags);
      }
    })();
    return found;
  }

  counts(): TagCount[] {
    return this.#db
      .query<TagCount, []>("SELECT tag, COUNT(*) AS messages FROM message_tags GROUP BY tag")
      .all()
      .sort((a, b) => compareTags(a.tag, b.tag));
  }

  /** Returns how many messages carried `tag`; a message that also had `name` keeps one of them. */
  rename(tag: string, name: string): number {
    let renamed = 0;
    this.#db.transaction(() => {
      renamed = this.#db
        .query("UPDATE OR IGNORE message_tags SET tag = ? WHERE tag = ?")
        .run(name, tag).changes;
      // The same name in another case was just updated in place; otherwise what is left had both.
      if (tag.toLowerCase() !== name.toLowerCase())
        renamed += this.#db.query("DELETE FROM message_tags WHERE tag = ?").run(tag).changes;
    })();
    return renamed;
  }

  /** Returns how many messages carried the tag. */
  remove(tag: string): number {
    return this.#db.query("DELETE FROM message_tags WHERE tag = ?").run(tag).changes;
  }
}

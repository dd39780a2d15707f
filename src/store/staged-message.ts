/**
 * Taking in a message body as it arrives, before it is stored. A small message is gathered in
 * memory; one that grows past a threshold goes to its own raw file while it is received, so memory
 * stays flat for a 25 MiB message and little is left to write once its last octet arrived.
 */
import { concatBytes } from "../core/bytes.ts";
import { HEADER_SECTION_LIMIT, headerSectionBytes } from "./header-section.ts";
import type { RawFiles, RawFileWriter } from "./raw-files.ts";
import type { StagedMessage } from "./types.ts";

/**
 * A staged message: in memory (`raw`), or in the raw file named by `fileId`, whose last writes
 * and sync may still be under way when staging resolves: `durable` settles once they are done,
 * so the row that names the file can be committed meanwhile (the store answers after both).
 */
export class StagedRaw implements StagedMessage {
  #discarded = false;

  constructor(
    readonly size: number,
    readonly raw: Uint8Array | undefined,
    readonly header: Uint8Array,
    readonly fileId: string | undefined,
    private readonly removeFile: (id: string) => void,
    readonly durable: Promise<void> = Promise.resolve(),
  ) {
    // Whoever adds the message hears of a failure; one that is discarded need not.
    durable.catch(() => {});
  }

  get discarded(): boolean {
    return this.#discarded;
  }

  discard(): void {
    if (this.#discarded) return;
    this.#discarded = true;
    if (this.fileId !== undefined) this.removeFile(this.fileId);
  }
}

export interface StageOptions {
  /** Where large messages go; undefined keeps everything in memory (a store in memory). */
  rawFiles: RawFiles | undefined;
  /** Messages of at least this many octets go to a file. */
  fileMinBytes: number;
  /** The ID the message's file is named by (and the message will be stored under). */
  newId: () => string;
}

export async function stageMessage(
  body: AsyncIterable<Uint8Array>,
  prefix: Uint8Array | undefined,
  options: StageOptions,
): Promise<StagedRaw> {
  let parts: Uint8Array[] = prefix === undefined || prefix.length === 0 ? [] : [prefix];
  let size = prefix?.length ?? 0;
  let file: { id: string; writer: RawFileWriter; header: Uint8Array } | undefined;
  const { rawFiles } = options;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (file !== undefined) {
        await file.writer.append([chunk]);
        continue;
      }
      parts.push(chunk);
      if (rawFiles === undefined || size < options.fileMinBytes) continue;
      // The header section is kept aside for the summary fields: wait until it is all here.
      const header = headerOf(parts);
      if (header === undefined) continue;
      const id = options.newId();
      file = { id, writer: await rawFiles.create(id), header };
      const held = parts;
      parts = [];
      await file.writer.append(held);
    }
    if (file === undefined) {
      const raw = concatBytes(parts);
      return new StagedRaw(size, raw, headerSectionBytes(raw), undefined, () => {});
    }
  } catch (error) {
    await file?.writer.abort();
    throw error;
  }
  // The body is all here; the rest of the file goes to disk while its row is committed.
  const durable = file.writer.finish();
  return new StagedRaw(size, undefined, file.header, file.id, (id) => void rawFiles?.remove([id]), durable);
}

/**
 * The header section of the message the parts begin, copied out of them; undefined while it may
 * go on in parts still to come. It nearly always ends within the first few kilobytes, so only that
 * much is joined, and more only when it does not.
 */
function headerOf(parts: readonly Uint8Array[]): Uint8Array | undefined {
  let total = 0;
  for (const part of parts) total += part.length;
  const available = Math.min(total, HEADER_SECTION_LIMIT);
  for (let want = 4096; ; want *= 4) {
    const head = firstBytes(parts, Math.min(want, available));
    const section = headerSectionBytes(head);
    // headerSectionBytes returns all it was given when it found no end.
    if (section.length < head.length || head.length >= HEADER_SECTION_LIMIT) return section.slice();
    if (head.length >= available) return undefined;
  }
}

function firstBytes(parts: readonly Uint8Array[], count: number): Uint8Array {
  const first = parts[0];
  if (first !== undefined && first.length >= count) return first.subarray(0, count);
  const taken: Uint8Array[] = [];
  let left = count;
  for (const part of parts) {
    if (left === 0) break;
    const piece = part.length > left ? part.subarray(0, left) : part;
    taken.push(piece);
    left -= piece.length;
  }
  return concatBytes(taken);
}

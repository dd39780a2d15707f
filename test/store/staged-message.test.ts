import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RawFiles } from "../../src/store/raw-files.ts";
import { stageMessage } from "../../src/store/staged-message.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function rawFiles(): RawFiles {
  const parent = mkdtempSync(join(tmpdir(), "smtpkit-staged-"));
  const files = new RawFiles(join(parent, "raw"));
  cleanups.push(() => {
    files.close();
    rmSync(parent, { recursive: true, force: true });
  });
  return files;
}

const encoder = new TextEncoder();
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");

async function* pieces(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

function message(bodySize: number, header = "From: a@a.test\r\nSubject: staged\r\n"): Uint8Array {
  return encoder.encode(`${header}\r\n${"y".repeat(bodySize)}`);
}

let counter = 0;
const newId = () => `id${counter++}`;
const PREFIX = encoder.encode("Received: by test\r\n");

describe("stageMessage", () => {
  for (const size of [1, 7, 4096]) {
    test(`a small message stays in memory, prefix first (pieces of ${size})`, async () => {
      const body = message(100);
      const staged = await stageMessage(pieces(body, size), PREFIX, {
        rawFiles: rawFiles(),
        fileMinBytes: 1000,
        newId,
      });
      expect(staged.fileId).toBeUndefined();
      expect(latin1(staged.raw ?? new Uint8Array())).toBe(latin1(PREFIX) + latin1(body));
      expect(staged.size).toBe(PREFIX.length + body.length);
      expect(latin1(staged.header)).toBe("Received: by test\r\nFrom: a@a.test\r\nSubject: staged");
    });
  }

  for (const size of [1000, 65536, 300_000]) {
    test(`a large message goes to a file as it arrives (pieces of ${size})`, async () => {
      const files = rawFiles();
      const body = message(400_000);
      const staged = await stageMessage(pieces(body, size), PREFIX, {
        rawFiles: files,
        fileMinBytes: 4096,
        newId,
      });
      expect(staged.raw).toBeUndefined();
      expect(staged.fileId).toBeDefined();
      expect(staged.size).toBe(PREFIX.length + body.length);
      expect(latin1(staged.header)).toBe("Received: by test\r\nFrom: a@a.test\r\nSubject: staged");
      // The end of the file may still be on its way to the disk when staging resolves.
      await staged.durable;
      const stored = await files.read(staged.fileId ?? "", staged.size);
      expect(latin1(stored)).toBe(latin1(PREFIX) + latin1(body));
      staged.discard();
      staged.discard();
      await Bun.sleep(20);
      expect(files.list()).toEqual([]);
    });
  }

  test("a header section longer than the first pieces is still found whole", async () => {
    const header = Array.from({ length: 300 }, (_, index) => `X-Long-${index}: ${"v".repeat(60)}\r\n`).join(
      "",
    );
    const body = message(50_000, header);
    const staged = await stageMessage(pieces(body, 1000), undefined, {
      rawFiles: rawFiles(),
      fileMinBytes: 8192,
      newId,
    });
    expect(staged.fileId).toBeDefined();
    expect(latin1(staged.header)).toBe(header.slice(0, -2));
  });

  test("without a place for files, even a large message stays in memory", async () => {
    const body = message(200_000);
    const staged = await stageMessage(pieces(body, 65536), undefined, {
      rawFiles: undefined,
      fileMinBytes: 1000,
      newId,
    });
    expect(staged.raw?.length).toBe(body.length);
  });

  test("a body whose reading fails leaves no file behind and rejects with that error", async () => {
    const files = rawFiles();
    async function* failing(): AsyncIterable<Uint8Array> {
      yield message(100_000);
      throw new Error("bare LF");
    }
    await expect(
      stageMessage(failing(), PREFIX, { rawFiles: files, fileMinBytes: 4096, newId }),
    ).rejects.toThrow("bare LF");
    expect(files.list()).toEqual([]);
  });
});

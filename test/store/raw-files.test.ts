import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RawFiles } from "../../src/store/raw-files.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function rawFiles(): RawFiles {
  const parent = mkdtempSync(join(tmpdir(), "smtpkit-raw-files-"));
  const files = new RawFiles(join(parent, "mailbox.sqlite-raw"));
  cleanups.push(() => {
    files.close();
    rmSync(parent, { recursive: true, force: true });
  });
  return files;
}

const bytes = (text: string) => new TextEncoder().encode(text);

describe("RawFiles", () => {
  test("makes its directory with the first file; what is written reads back at its size; list names it", async () => {
    const files = rawFiles();
    expect(existsSync(files.dir)).toBe(false);
    expect(files.list()).toEqual([]);
    await files.write("AbC123", bytes("Subject: x\r\n\r\nbody\r\n"));
    expect(new TextDecoder().decode(await files.read("AbC123", 20))).toBe("Subject: x\r\n\r\nbody\r\n");
    expect(files.list()).toEqual(["AbC123"]);
  });

  test("a file shorter than the size asked for is an error, not a short message", async () => {
    const files = rawFiles();
    await files.write("short", bytes("abc"));
    await expect(files.read("short", 5000)).rejects.toThrow("short");
  });

  test("create, append and finish: the file is there once finish resolves", async () => {
    const files = rawFiles();
    const writer = await files.create("streamed");
    await writer.append([bytes("one "), bytes("two ")]);
    await writer.append([bytes("three")]);
    await writer.finish();
    expect(new TextDecoder().decode(await files.read("streamed", 13))).toBe("one two three");
  });

  test("abort removes the file", async () => {
    const files = rawFiles();
    const writer = await files.create("dropped");
    await writer.append([bytes("partial")]);
    await writer.abort();
    expect(readdirSync(files.dir)).toEqual([]);
  });

  test("remove deletes files and ignores names that are gone", async () => {
    const files = rawFiles();
    await files.write("a1", bytes("a"));
    await files.write("b2", bytes("b"));
    await files.remove(["a1", "gone"]);
    expect(files.list()).toEqual(["b2"]);
  });

  test("many files written at once share directory syncs and all arrive", async () => {
    const files = rawFiles();
    const ids = Array.from({ length: 40 }, (_, index) => `m${index}`);
    await Promise.all(ids.map((id) => files.write(id, bytes(`message ${id}`))));
    expect(files.list().sort()).toEqual([...ids].sort());
  });

  test("names that are not message IDs are refused (no path tricks)", async () => {
    const files = rawFiles();
    await expect(files.write("../escape", bytes("x"))).rejects.toThrow("not a message ID");
    await expect(files.read("a/b", 1)).rejects.toThrow("not a message ID");
  });
});

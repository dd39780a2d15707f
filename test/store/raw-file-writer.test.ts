import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRawFile } from "../../src/store/raw-file-writer.ts";

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function directory(): string {
  const made = mkdtempSync(join(tmpdir(), "smtpkit-raw-writer-"));
  directories.push(made);
  return made;
}

/** Bytes that differ from position to position, so a misplaced piece shows. */
function pattern(size: number, seed = 0): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let index = 0; index < size; index++) bytes[index] = (index * 31 + seed * 7 + (index >> 12)) & 0xff;
  return bytes;
}

/** Splits bytes at random points, as a socket would. */
function randomParts(bytes: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = Math.min(bytes.length - at, 1 + Math.floor(Math.random() * 200_000));
    parts.push(bytes.subarray(at, at + size));
    at += size;
  }
  return parts;
}

describe.each([
  ["direct", true],
  ["through the page cache", false],
])("createRawFile (%s)", (_name, direct) => {
  for (const size of [0, 1, 4095, 4096, 4097, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024 + 123]) {
    test(`${size} octets appended in random pieces read back exactly (padding after them is zeros)`, async () => {
      const path = join(directory(), "file");
      const content = pattern(size, size);
      const writer = await createRawFile(path, { direct });
      for (const part of randomParts(content)) await writer.append([part]);
      await writer.finish();
      const read: Uint8Array = new Uint8Array(readFileSync(path));
      expect(read.length).toBeGreaterThanOrEqual(size);
      expect(read.length - size).toBeLessThan(4096);
      expect(read.subarray(0, size)).toEqual(content);
      expect(read.subarray(size).every((byte) => byte === 0)).toBe(true);
    });
  }

  test("several pieces in one append, and appends of nothing", async () => {
    const path = join(directory(), "file");
    const content = pattern(600_000, 3);
    const writer = await createRawFile(path, { direct });
    await writer.append([]);
    await writer.append([content.subarray(0, 10), new Uint8Array(0), content.subarray(10, 300_000)]);
    await writer.append([content.subarray(300_000)]);
    await writer.finish();
    const read: Uint8Array = new Uint8Array(readFileSync(path));
    expect(read.subarray(0, content.length)).toEqual(content);
  });

  test("an existing name is never overwritten", async () => {
    const path = join(directory(), "file");
    const writer = await createRawFile(path, { direct });
    await writer.finish();
    await expect(createRawFile(path, { direct })).rejects.toThrow();
  });

  test("abort closes the file without finishing it, and appending afterwards fails", async () => {
    const path = join(directory(), "file");
    const writer = await createRawFile(path, { direct });
    await writer.append([pattern(10_000)]);
    await writer.abort();
    await writer.abort();
    expect(statSync(path).isFile()).toBe(true);
    await expect(writer.append([pattern(300_000)])).rejects.toThrow();
  });

  test("writers at once keep their bytes apart (buffers are reused between them)", async () => {
    const dir = directory();
    const contents = [0, 1, 2, 3, 4, 5].map((seed) => pattern(700_000 + seed * 5000, seed));
    await Promise.all(
      contents.map(async (content, index) => {
        const writer = await createRawFile(join(dir, String(index)), { direct });
        for (const part of randomParts(content)) await writer.append([part]);
        await writer.finish();
      }),
    );
    contents.forEach((content, index) => {
      expect(new Uint8Array(readFileSync(join(dir, String(index)))).subarray(0, content.length)).toEqual(
        content,
      );
    });
  });
});

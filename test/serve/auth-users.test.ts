import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliError, ExitCode } from "../../src/commands/exit-codes.ts";
import { loadAuthUsers } from "../../src/serve/auth-users.ts";

let dir: string;
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpkit-auth-users-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function usersFile(text: string): Promise<string> {
  const path = join(dir, `users-${++n}`);
  await writeFile(path, text);
  return path;
}

async function failure(path: string): Promise<CliError> {
  try {
    await loadAuthUsers(path);
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    return error as CliError;
  }
  throw new Error("expected loadAuthUsers to fail");
}

describe("loadAuthUsers", () => {
  test("user:password lines; blank lines and # comments are skipped", async () => {
    const users = await loadAuthUsers(
      await usersFile("# users\nalice:s3cret\n\n   \n  # indented comment\nbob:hunter2\n"),
    );
    expect([...users]).toEqual([
      ["alice", "s3cret"],
      ["bob", "hunter2"],
    ]);
  });

  test("the password is everything after the first colon, spaces and colons included", async () => {
    const users = await loadAuthUsers(await usersFile("carol:a:b:c\ndave: spaced out \n"));
    expect(users.get("carol")).toBe("a:b:c");
    expect(users.get("dave")).toBe(" spaced out ");
  });

  test("CRLF line ends and a missing final newline are fine", async () => {
    const users = await loadAuthUsers(await usersFile("alice:one\r\nbob:two"));
    expect([...users]).toEqual([
      ["alice", "one"],
      ["bob", "two"],
    ]);
  });

  test("UTF-8 names and passwords, and an empty password", async () => {
    const users = await loadAuthUsers(await usersFile("jöran:pässwörd\nguest:\n"));
    expect(users.get("jöran")).toBe("pässwörd");
    expect(users.get("guest")).toBe("");
  });

  test("a later line for the same user wins", async () => {
    const users = await loadAuthUsers(await usersFile("alice:old\nalice:new\n"));
    expect(users.get("alice")).toBe("new");
  });

  test("an empty file gives no users (every AUTH then fails)", async () => {
    expect((await loadAuthUsers(await usersFile(""))).size).toBe(0);
  });

  test("a missing file is exit code 66 (EX_NOINPUT) and names the flag and path", async () => {
    const path = join(dir, "nope");
    const error = await failure(path);
    expect(error.exitCode).toBe(ExitCode.noInput);
    expect(error.message).toBe(`--auth-users: ${path} does not exist`);
  });

  test.each([
    ["a line without a colon", "alice:ok\njust-a-name\n", 2],
    ["a line with an empty user", "alice:ok\nbob:ok\n:password\n", 3],
  ])("%s is exit code 78 (EX_CONFIG), with file and line number", async (_name, text, line) => {
    const path = await usersFile(text);
    const error = await failure(path);
    expect(error.exitCode).toBe(ExitCode.config);
    expect(error.message).toBe(`${path}:${line}: expected user:password`);
  });
});

import { describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliError } from "../../src/commands/exit-codes.ts";
import { chooseAccount } from "../../src/config/account-choice.ts";
import { defaultConfigPath, parseAccounts, pickAccount } from "../../src/config/accounts.ts";

const good = `
[accounts.work]
server = "smtp.example.com"
port = 587
tls = "starttls"
auth = "plain"
user = "ana"
password_cmd = "pass show smtp"
from = "Ana <ana@example.com>"
default = true

[accounts.home]
server = "mail.example.net"
tls = "implicit"
`;

function errorOf(text: string): CliError {
  try {
    parseAccounts("/c.toml", text);
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error("expected a config error");
}

describe("config accounts", () => {
  test("reads named accounts with their fields", () => {
    const file = parseAccounts("/c.toml", good);
    const work = file.accounts.get("work");
    expect(work?.server).toBe("smtp.example.com");
    expect(work?.port).toBe(587);
    expect(work?.auth).toBe("PLAIN");
    expect(work?.password.command).toBe("pass show smtp");
    expect(file.accounts.get("home")?.tls).toBe("implicit");
  });

  test("tls_fingerprint: kept in openssl's form; a value that is not a SHA-256 fingerprint is a config error", () => {
    const hex = "ab".repeat(32);
    const file = parseAccounts(
      "/c.toml",
      `[accounts.pinned]\nserver = "mx.example.com"\ntls_fingerprint = "${hex}"\n`,
    );
    expect(file.accounts.get("pinned")?.tlsFingerprint).toBe(Array(32).fill("AB").join(":"));
    const error = errorOf(`[accounts.pinned]\nserver = "mx.example.com"\ntls_fingerprint = "ab:cd"\n`);
    expect(error.exitCode).toBe(78);
    expect(error.message).toBe(
      "/c.toml:3: account 'pinned': tls_fingerprint must be a SHA-256 fingerprint (64 hex digits, colons allowed)",
    );
  });

  test("the default account is picked without --account, a named one with it", () => {
    const file = parseAccounts("/c.toml", good);
    expect(pickAccount(file, undefined)?.name).toBe("work");
    expect(pickAccount(file, "home")?.name).toBe("home");
  });

  test("chooseAccount: --server alone reads no file; --account or no --server reads it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "smtpkit-accounts-"));
    try {
      const config = join(dir, "config.toml");
      await writeFile(config, "this is not TOML = = =\n");
      expect(await chooseAccount({ config, server: "mx.example.com" })).toBeUndefined();
      await expect(chooseAccount({ config })).rejects.toThrow(/not valid TOML/);
      await writeFile(config, good);
      expect((await chooseAccount({ config }))?.name).toBe("work");
      expect((await chooseAccount({ config, account: "home", server: "mx.example.com" }))?.name).toBe("home");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an unknown account name exits 78 and lists the known ones", () => {
    const file = parseAccounts("/c.toml", good);
    expect(() => pickAccount(file, "nope")).toThrow(/no account named 'nope' \(accounts: work, home\)/);
  });

  test("a syntax error names the file and line, exit 78", () => {
    const error = errorOf('[accounts.a]\nserver = "x"\nport = 58 7\n');
    expect(error.exitCode).toBe(78);
    expect(error.message).toStartWith("/c.toml:3: not valid TOML");
  });

  test("a bad value names its line and what is wrong", () => {
    const error = errorOf('[accounts.a]\nserver = "x"\n\ntls = "sometimes"\n');
    expect(error.exitCode).toBe(78);
    expect(error.message).toBe("/c.toml:4: account 'a': tls must be one of implicit, starttls, none");
  });

  test("a password stored in clear is refused with a hint", () => {
    const error = errorOf('[accounts.a]\npassword = "hunter2"\n');
    expect(error.message).toContain("/c.toml:2: account 'a': unknown key 'password'");
    expect(error.message).toContain("password_cmd");
  });

  test("two default accounts are an error", () => {
    const error = errorOf("[accounts.a]\ndefault = true\n[accounts.b]\ndefault = true\n");
    expect(error.message).toBe("/c.toml:4: accounts 'a' and 'b' are both marked default");
  });

  test("the default path follows XDG_CONFIG_HOME, else ~/.config", () => {
    expect(defaultConfigPath({ XDG_CONFIG_HOME: "/x" })).toBe("/x/smtpkit/config.toml");
    expect(defaultConfigPath({ HOME: "/home/u" })).toBe("/home/u/.config/smtpkit/config.toml");
  });
});

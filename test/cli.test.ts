import { describe, expect, test } from "bun:test";

const cliPath = new URL("../src/cli.ts", import.meta.url).pathname;

function run(...args: string[]) {
  const proc = Bun.spawnSync([process.execPath, cliPath, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
}

describe("smtpkit CLI", () => {
  test("--help lists the four subcommands", () => {
    const { code, stdout } = run("--help");
    expect(code).toBe(0);
    for (const name of ["send", "probe", "serve", "queue"]) expect(stdout).toContain(`  ${name}`);
  });

  test("--version prints the package version", () => {
    const { code, stdout } = run("--version");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^smtpkit \d+\.\d+\.\d+\n$/);
  });

  test("each subcommand has its own --help", () => {
    for (const name of ["send", "probe", "serve", "queue"]) {
      const { code, stdout } = run(name, "--help");
      expect(code).toBe(0);
      expect(stdout).toContain(`smtpkit ${name}`);
    }
  });

  test("an unknown flag is one line naming it, exit 64", () => {
    const { code, stderr } = run("send", "--bogus");
    expect(code).toBe(64);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("--bogus");
  });

  test("a missing argument is one line, exit 64", () => {
    const { code, stderr } = run("probe");
    expect(code).toBe(64);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });

  test("an unknown subcommand exits 64", () => {
    const { code, stderr } = run("frobnicate");
    expect(code).toBe(64);
    expect(stderr).toContain("frobnicate");
  });
});

// Interactive mode with piped input (no terminal) against the scripted server: what goes on the
// wire for typed lines, AUTH built from a typed user and password, dot-stuffing after DATA.

import { afterEach, describe, expect, test } from "bun:test";
import { PassThrough, Writable } from "node:stream";
import type { OptionValue } from "../../src/commands/option-values.ts";
import { runInteractive } from "../../src/commands/probe-interactive.ts";
import { parseProbeCommand } from "../../src/commands/probe-options.ts";
import { type ScriptedServer, type ScriptedServerOptions, startScriptedServer } from "./probe-server.ts";

let server: ScriptedServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function session(
  typed: string[],
  serverOptions: ScriptedServerOptions = {},
  flags: Record<string, OptionValue> = {},
  verbose = false,
) {
  server = await startScriptedServer(serverOptions);
  const { settings } = await parseProbeCommand(`127.0.0.1:${server.port}`, {
    interactive: true,
    ...flags,
  });
  const input = new PassThrough();
  let screen = "";
  const output = new Writable({
    write(chunk, _encoding, done) {
      screen += chunk.toString();
      done();
    },
  });
  input.end(typed.map((line) => `${line}\n`).join(""));
  const code = await runInteractive(settings, { verbose, io: { input, output } });
  return { code, screen, commands: server.commands };
}

describe("probe --interactive (piped input)", () => {
  test("typed lines go out as typed; replies come back with their meaning; end of input sends QUIT", async () => {
    const { code, screen, commands } = await session(["EHLO me.test", "noop", "RCPT TO:<x@y.test>"], {
      replies: { RCPT: "503 5.5.1 Error: need MAIL command" },
    });
    expect(code).toBe(0);
    expect(commands).toEqual(["EHLO me.test", "noop", "RCPT TO:<x@y.test>", "QUIT"]);
    expect(screen).toContain("<- 220 scripted.test ESMTP ready\n    = 220: Service ready\n");
    expect(screen).toContain("<- 503 5.5.1 Error: need MAIL command\n");
    expect(screen).toContain("    = 503: Bad sequence of commands; 5.5.1: Invalid command\n");
    expect(screen).toContain("<- 221 2.0.0 Bye");
  });

  test("lines after DATA are dot-stuffed until a lone '.'", async () => {
    const { commands } = await session(
      [
        "EHLO me.test",
        "MAIL FROM:<a@a.test>",
        "RCPT TO:<b@b.test>",
        "DATA",
        "Subject: x",
        "",
        ".dot",
        "..two",
        ".",
        "QUIT",
      ],
      {},
      { starttls: "never" },
    );
    const data = commands.indexOf("DATA");
    expect(commands.slice(data)).toEqual(["DATA", "Subject: x", "", "..dot", "...two", ".", "QUIT"]);
  });

  test("AUTH PLAIN asks for a user and password and builds the exchange; the transcript masks it", async () => {
    let sent = "";
    const { screen, commands } = await session(
      ["EHLO me.test", "AUTH PLAIN", "y", "alice", "pässword"],
      {
        ehlo: ["250-scripted.test", "250 AUTH PLAIN LOGIN"],
        onLine: (line) => {
          if (!line.startsWith("AUTH")) return undefined;
          sent = line;
          return "235 2.7.0 Authentication successful";
        },
      },
      {},
      true,
    );
    expect(sent).toBe(`AUTH PLAIN ${Buffer.from("\0alice\0pässword").toString("base64")}`);
    expect(commands).toContain(sent);
    // Asked first, since the connection is not encrypted.
    expect(screen).toContain("*** the connection is not encrypted");
    expect(screen).toContain(" -> AUTH PLAIN ********");
    expect(screen).not.toContain(sent.slice("AUTH PLAIN ".length));
    expect(screen).toContain("<- 235 2.7.0 Authentication successful");
  });

  test("AUTH LOGIN: user and password each in its own base64 line", async () => {
    const seen: string[] = [];
    await session(["EHLO me.test", "AUTH LOGIN", "y", "bob", "secret"], {
      ehlo: ["250-scripted.test", "250 AUTH LOGIN"],
      onLine: (line) => {
        seen.push(line);
        if (line === "AUTH LOGIN") return "334 VXNlcm5hbWU6";
        if (seen.at(-2) === "AUTH LOGIN") return "334 UGFzc3dvcmQ6";
        if (seen.at(-3) === "AUTH LOGIN") return "235 2.7.0 ok";
        return undefined;
      },
    });
    const start = seen.indexOf("AUTH LOGIN");
    expect(seen.slice(start, start + 3)).toEqual([
      "AUTH LOGIN",
      Buffer.from("bob").toString("base64"),
      Buffer.from("secret").toString("base64"),
    ]);
  });

  test("an unadvertised command is sent only after 'y'", async () => {
    const { commands, screen } = await session(["EHLO me.test", "BDAT 0 LAST", "n", "BDAT 0 LAST", "yes"], {
      ehlo: ["250-scripted.test", "250 PIPELINING"],
    });
    expect(screen).toContain(
      "*** the server did not advertise CHUNKING (BDAT, RFC 3030). Send it anyway? [y/N]",
    );
    expect(commands.filter((c) => c === "BDAT 0 LAST")).toHaveLength(1);
  });

  test("a typed STARTTLS switches to TLS; an unverified certificate ends the session with 77", async () => {
    const { createTestPki } = await import("../helpers/certs.ts");
    const pki = await createTestPki();
    const { code, screen, commands } = await session(["EHLO me.test", "STARTTLS", "EHLO me.test"], {
      tls: pki.server,
    });
    expect(screen).toContain("=== TLS started with TLSv1.");
    expect(screen).toContain("*** certificate did not verify");
    expect(commands).toEqual(["EHLO me.test", "STARTTLS", "QUIT"]);
    expect(code).toBe(77);
  });

  test("the server closing the connection ends the session with 75", async () => {
    const { code, screen } = await session(["EHLO me.test", "NOOP", "NOOP"], {
      replies: { NOOP: "421 4.3.2 shutting down" },
    });
    expect(screen).toContain("<- 421 4.3.2 shutting down");
    expect(screen).toContain("=== connection closed");
    expect(code).toBe(75);
  });

  test("nothing listening: exit 75 with one line", async () => {
    server = await startScriptedServer();
    const port = server.port;
    await server.close();
    server = undefined;
    const { settings } = await parseProbeCommand(`127.0.0.1:${port}`, { interactive: true });
    const input = new PassThrough();
    input.end();
    let screen = "";
    const output = new Writable({
      write(chunk, _e, done) {
        screen += chunk.toString();
        done();
      },
    });
    expect(await runInteractive(settings, { verbose: false, io: { input, output } })).toBe(75);
    expect(screen).toContain(`*** connect: connection to 127.0.0.1:${port} refused`);
  });
});

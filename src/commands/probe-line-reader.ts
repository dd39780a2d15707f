/**
 * Lines typed by a person (or piped in) for interactive mode, one at a time, with readline's
 * history and TAB completion on a terminal, and a masked read for passwords: while a secret is
 * typed nothing is echoed (as sudo does) and the line is kept out of the history.
 */

import * as readline from "node:readline";
import { Writable } from "node:stream";

export interface LineReaderOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Terminal editing, history and completion; when false, lines are read as they come. */
  terminal: boolean;
  completer?: (line: string) => [string[], string];
}

/** How many typed lines the history keeps. */
const HISTORY_SIZE = 500;

export class LineReader {
  private readonly rl: readline.Interface;
  private readonly queued: string[] = [];
  private waiter: ((line: string | null) => void) | undefined;
  private ended = false;
  private muted = false;

  constructor(private readonly options: LineReaderOptions) {
    const target = options.output;
    const echo = new Writable({
      write: (chunk: Buffer | string, _encoding, done) => {
        if (!this.muted) target.write(chunk);
        done();
      },
    });
    // readline sizes and redraws its line from these when it drives a terminal.
    Object.assign(echo, { isTTY: target.isTTY === true, columns: target.columns ?? 80 });
    this.rl = readline.createInterface({
      input: options.input,
      output: echo,
      terminal: options.terminal,
      historySize: options.terminal ? HISTORY_SIZE : 0,
      ...(options.terminal && options.completer !== undefined ? { completer: options.completer } : {}),
    });
    this.rl.on("line", (line) => this.deliver(line));
    this.rl.on("close", () => {
      this.ended = true;
      this.deliver(null);
    });
    // Ctrl-C ends the session like Ctrl-D: the caller sends QUIT and closes.
    this.rl.on("SIGINT", () => this.rl.close());
  }

  /** The next line, or null once the input has ended. The prompt is shown only on a terminal. */
  read(prompt = ""): Promise<string | null> {
    const queued = this.queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.resolve(null);
    if (this.options.terminal) {
      this.rl.setPrompt(prompt);
      this.rl.prompt();
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** A line that is not echoed and not remembered. */
  async readSecret(prompt: string): Promise<string | null> {
    if (!this.options.terminal) return this.read();
    const queued = this.queued.shift();
    if (queued !== undefined) return queued;
    if (this.ended) return null;
    this.rl.setPrompt(prompt);
    this.rl.prompt();
    this.muted = true;
    const line = await new Promise<string | null>((resolve) => {
      this.waiter = resolve;
    });
    this.muted = false;
    this.options.output.write("\n");
    // node:readline records every line, answers included; its history array is the only handle.
    const history = (this.rl as unknown as { history?: string[] }).history;
    if (line !== null && history !== undefined && history[0] === line) history.shift();
    return line;
  }

  close(): void {
    this.rl.close();
  }

  private deliver(line: string | null): void {
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter(line);
    } else if (line !== null) this.queued.push(line);
  }
}

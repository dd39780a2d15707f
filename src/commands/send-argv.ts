/**
 * A plain `smtpkit send` command line read without cac, so that `send` starts without loading
 * and configuring it. "Plain" means every word is one of send's flags written as in --help
 * (`--from a@b`, `-t c@d`, `--tls`), each flag with a value followed by one that does not start
 * with "-", and no boolean flag given twice. Anything else (--help, `--from=a`, `-4v`, `--`,
 * unknown flags, stray words) returns undefined and goes to cac, so its errors and odd cases
 * stay cac's own.
 *
 * The result is the options object cac would hand to send's action, key for key
 * (test/commands/send-argv.test.ts compares the two). The code is plain loops on purpose: at
 * start-up, the first call of each built-in such as Array.prototype.map or a regular expression
 * costs 0.05-0.3 ms (measured in the compiled binary), more than this whole parse otherwise.
 */
import { SEND_FLAGS, type SendFlag } from "./send-flags.ts";

const NEGATION = "no-";

function isLowerLetter(ch: string | undefined): boolean {
  return ch !== undefined && ch >= "a" && ch <= "z";
}

/** cac's camelcase(), `name.replaceAll(/([a-z])-([a-z])/g, ...)`: `reply-to` becomes `replyTo`. */
function camelCase(name: string): string {
  let out = "";
  let previousTaken = false;
  for (let i = 0; i < name.length; i++) {
    const ch = name[i] ?? "";
    if (ch === "-" && !previousTaken && isLowerLetter(name[i - 1]) && isLowerLetter(name[i + 1])) {
      out += (name[i + 1] ?? "").toUpperCase();
      i++;
      // The letter after the dash belongs to this match, so it cannot start the next one.
      previousTaken = true;
      continue;
    }
    out += ch;
    previousTaken = false;
  }
  return out;
}

/** The key cac gives a flag: its long name in camelCase (`chunking` for `--no-chunking`), else its letter. */
function keyOf(flag: SendFlag): string {
  if (flag.long === undefined) return flag.short ?? "";
  return camelCase(flag.long.startsWith(NEGATION) ? flag.long.slice(NEGATION.length) : flag.long);
}

function flagFor(word: string): SendFlag | undefined {
  const long = word.startsWith("--") ? word.slice(2) : undefined;
  const short = long === undefined && word.length === 2 && word[0] === "-" ? word[1] : undefined;
  if (long === undefined && short === undefined) return undefined;
  for (const flag of SEND_FLAGS) {
    if (long === undefined ? flag.short === short : flag.long === long) return flag;
  }
  return undefined;
}

/** mri's reading of a value: anything that is a number to `+` becomes that number (" 7 " is 7, "" is 0). */
function mriValue(text: string): string | number {
  const number = +text;
  return number * 0 === 0 ? number : text;
}

/** The options for `send`'s action from the words after "send", or undefined for cac to parse them. */
export function parsePlainSendArgs(args: readonly string[]): Record<string, unknown> | undefined {
  const options: Record<string, unknown> = { "--": [] };
  const given: SendFlag[] = [];
  const values: Array<Array<string | number>> = [];
  for (let i = 0; i < args.length; i++) {
    const flag = flagFor(args[i] ?? "");
    if (flag === undefined) return undefined;
    if (flag.long?.startsWith(NEGATION)) {
      options[keyOf(flag)] = false;
      continue;
    }
    let index = given.indexOf(flag);
    if (index !== -1 && flag.value === undefined) return undefined; // cac: [true, true]
    if (index === -1) index = given.push(flag) - 1;
    if (flag.value === undefined) continue;
    const value = args[++i];
    if (value === undefined || value.startsWith("-")) return undefined;
    const list = values[index] ?? [];
    list.push(mriValue(value));
    values[index] = list;
  }
  for (const flag of SEND_FLAGS) {
    if (!flag.long?.startsWith(NEGATION)) continue;
    const key = keyOf(flag);
    if (!(key in options)) options[key] = true;
  }
  for (let index = 0; index < given.length; index++) {
    const flag = given[index] as SendFlag;
    const raw = values[index] ?? [];
    const strings: string[] = [];
    for (const value of raw) strings.push(String(value));
    options[keyOf(flag)] = flag.value === undefined ? true : strings;
    // cac also sets the short name, to mri's value: one value as it is, several as a list.
    if (flag.long !== undefined && flag.short !== undefined) {
      options[flag.short] = flag.value === undefined ? true : raw.length === 1 ? raw[0] : raw;
    }
  }
  return options;
}

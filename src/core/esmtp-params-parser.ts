/**
 * Reading MAIL and RCPT parameters as a server does. Apart from esmtp-params.ts, which a client
 * needs for writing them, so that a client does not load the server's parser.
 */
import { SmtpError } from "./errors.ts";
import {
  type BodyType,
  type EsmtpParam,
  isUtf8AddrType,
  type MailParams,
  type NotifyType,
  type RcptParams,
  type ReturnType,
} from "./esmtp-params.ts";
import { MAX_ENVID, MAX_ORCPT } from "./limits.ts";
import { decodeUtf8AddrXtext, decodeXtext } from "./xtext.ts";

/** RFC 5321 §4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). */
const KEYWORD = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
/** RFC 5321 §4.1.2 esmtp-value: any CHAR but "=", SP and controls; RFC 6531 §3.3 adds UTF-8. */
const VALUE = /^[^\x00-\x20=\x7f]+$/;

function syntax(message: string): SmtpError {
  return new SmtpError(501, "5.5.4", message);
}

/**
 * Splits the text after a path ("SIZE=100 BODY=8BITMIME") into parameters; runs of spaces are
 * tolerated. A parameter that breaks the grammar gives 555 5.5.4 (RFC 5321 §4.1.1.11).
 */
export function parseEsmtpParams(text: string): EsmtpParam[] {
  const params: EsmtpParam[] = [];
  for (const word of text.split(" ")) {
    if (word === "") continue;
    const eq = word.indexOf("=");
    const name = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    if (!KEYWORD.test(name) || (value !== undefined && !VALUE.test(value))) {
      throw new SmtpError(555, "5.5.4", `malformed parameter ${JSON.stringify(word.slice(0, 64))}`);
    }
    params.push(value === undefined ? { name: name.toUpperCase() } : { name: name.toUpperCase(), value });
  }
  return params;
}

function requireValue(p: EsmtpParam): string {
  if (p.value === undefined || p.value === "") throw syntax(`${p.name} needs a value`);
  return p.value;
}

function decodeParamXtext(p: EsmtpParam): string {
  try {
    return decodeXtext(requireValue(p));
  } catch (error) {
    if (error instanceof SmtpError) throw error;
    throw syntax(`${p.name} is not valid xtext: ${(error as Error).message}`);
  }
}

function rejectDuplicate(seen: Set<string>, p: EsmtpParam): void {
  if (seen.has(p.name)) throw syntax(`duplicate ${p.name} parameter`);
  seen.add(p.name);
}

const BODY_TYPES: readonly BodyType[] = ["7BIT", "8BITMIME", "BINARYMIME"];
const RETURN_TYPES: readonly ReturnType[] = ["FULL", "HDRS"];
const NOTIFY_TYPES: readonly NotifyType[] = ["NEVER", "SUCCESS", "FAILURE", "DELAY"];

function oneOf<T extends string>(p: EsmtpParam, allowed: readonly T[]): T {
  const value = requireValue(p).toUpperCase();
  const found = allowed.find((a) => a === value);
  if (found === undefined) {
    throw syntax(`${p.name} must be ${allowed.join(", ")}, not ${JSON.stringify(p.value)}`);
  }
  return found;
}

/**
 * Types MAIL FROM parameters. Throws SmtpError 501 5.5.4 for a bad value (SIZE=-1, BODY=bogus,
 * bad xtext) or a parameter given twice. Unknown parameters land in `other`: whether they are
 * acceptable depends on what the server advertised, so the session decides.
 */
export function parseMailParams(params: readonly EsmtpParam[]): MailParams {
  const result: MailParams = { other: [] };
  const seen = new Set<string>();
  for (const p of params) {
    rejectDuplicate(seen, p);
    switch (p.name) {
      case "SIZE": {
        // RFC 1870 §3: size-value ::= 1*20DIGIT
        const value = requireValue(p);
        if (!/^\d{1,20}$/.test(value))
          throw syntax(`SIZE must be a number of octets, not ${JSON.stringify(value)}`);
        const size = Number(value);
        if (!Number.isSafeInteger(size)) throw new SmtpError(552, "5.3.4", `SIZE ${value} is too large`);
        result.size = size;
        break;
      }
      case "BODY":
        result.body = oneOf(p, BODY_TYPES);
        break;
      case "SMTPUTF8":
        if (p.value !== undefined) throw syntax("SMTPUTF8 takes no value");
        result.smtpUtf8 = true;
        break;
      case "RET":
        result.ret = oneOf(p, RETURN_TYPES);
        break;
      case "ENVID": {
        const value = requireValue(p);
        if (value.length > MAX_ENVID) {
          throw syntax(`ENVID is ${value.length} characters, the limit is ${MAX_ENVID} (RFC 3461 §4.4)`);
        }
        result.envid = decodeParamXtext(p);
        break;
      }
      case "AUTH":
        result.auth = decodeParamXtext(p);
        break;
      default:
        result.other.push(p.value === undefined ? { name: p.name } : { name: p.name, value: p.value });
    }
  }
  return result;
}

/** Types RCPT TO parameters; errors as for {@link parseMailParams}. */
export function parseRcptParams(params: readonly EsmtpParam[]): RcptParams {
  const result: RcptParams = { other: [] };
  const seen = new Set<string>();
  for (const p of params) {
    rejectDuplicate(seen, p);
    switch (p.name) {
      case "NOTIFY": {
        // RFC 3461 §4.1: "NEVER" alone, or a comma list of SUCCESS, FAILURE and DELAY.
        const types = requireValue(p)
          .split(",")
          .map((t) => {
            if (t === "") throw syntax("NOTIFY lists an empty type");
            return oneOf({ name: "NOTIFY", value: t }, NOTIFY_TYPES);
          });
        if (new Set(types).size !== types.length) throw syntax("NOTIFY lists a type twice");
        if (types.includes("NEVER") && types.length > 1)
          throw syntax("NOTIFY=NEVER cannot be combined with other types");
        result.notify = types;
        break;
      }
      case "ORCPT": {
        // RFC 3461 §4.2: orcpt-parameter = "ORCPT=" addr-type ";" xtext
        const value = requireValue(p);
        if (value.length > MAX_ORCPT) {
          throw syntax(`ORCPT is ${value.length} characters, the limit is ${MAX_ORCPT} (RFC 3461 §4.2)`);
        }
        const semi = value.indexOf(";");
        const type = value.slice(0, semi);
        if (semi <= 0 || !/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+$/.test(type)) {
          throw syntax('ORCPT must be addr-type ";" address, e.g. ORCPT=rfc822;user@example.com');
        }
        const encoded = value.slice(semi + 1);
        let address: string;
        try {
          address = isUtf8AddrType(type) ? decodeUtf8AddrXtext(encoded) : decodeXtext(encoded);
        } catch (error) {
          throw syntax(`ORCPT is not valid xtext: ${(error as Error).message}`);
        }
        if (address === "") throw syntax("ORCPT has an empty address");
        result.orcpt = { type, address };
        break;
      }
      default:
        result.other.push(p.value === undefined ? { name: p.name } : { name: p.name, value: p.value });
    }
  }
  return result;
}

/**
 * MAIL and RCPT parameters: their types and how a client writes them. A server reads them with
 * esmtp-params-parser.ts, kept apart so that a client does not load it.
 */
import { encodeUtf8AddrXtext, encodeXtext } from "./xtext.ts";

/** One "KEYWORD[=value]" of MAIL or RCPT (RFC 5321 §4.1.2 esmtp-param); name upper-cased. */
export interface EsmtpParam {
  name: string;
  value?: string;
}

export type BodyType = "7BIT" | "8BITMIME" | "BINARYMIME";
export type ReturnType = "FULL" | "HDRS";

/** MAIL FROM parameters, typed; ENVID and AUTH hold decoded values, `other` the ones not known here. */
export interface MailParams {
  /** RFC 1870 SIZE: the message size in octets, as the client estimates it. */
  size?: number;
  /** RFC 6152 / RFC 3030 BODY. */
  body?: BodyType;
  /** RFC 6531 §3.4 SMTPUTF8. */
  smtpUtf8?: boolean;
  /** RFC 3461 §4.3 RET. */
  ret?: ReturnType;
  /** RFC 3461 §4.4 ENVID, decoded from xtext. */
  envid?: string;
  /** RFC 4954 §5 AUTH=, decoded from xtext; "<>" when the submitter is unknown. */
  auth?: string;
  other: EsmtpParam[];
}

export type NotifyType = "NEVER" | "SUCCESS" | "FAILURE" | "DELAY";

/** RCPT TO parameters, typed; the ORCPT address is decoded from xtext. */
export interface RcptParams {
  /** RFC 3461 §4.1 NOTIFY. */
  notify?: NotifyType[];
  /** RFC 3461 §4.2 ORCPT: address type ("rfc822", or "utf-8" per RFC 6533) and the decoded original address. */
  orcpt?: { type: string; address: string };
  other: EsmtpParam[];
}

/** The wire form of a parameter list, words joined with spaces (no leading space). */
export function formatEsmtpParams(params: readonly EsmtpParam[]): string {
  return params.map((p) => (p.value === undefined ? p.name : `${p.name}=${p.value}`)).join(" ");
}

/** RFC 6533 §3: the "utf-8" address type carries utf-8-addr-xtext instead of plain xtext. */
export function isUtf8AddrType(type: string): boolean {
  return type.toLowerCase() === "utf-8";
}

/** Parameters for MAIL FROM, in a stable order, ENVID and AUTH xtext-encoded. */
export function formatMailParams(p: MailParams): EsmtpParam[] {
  const out: EsmtpParam[] = [];
  if (p.size !== undefined) out.push({ name: "SIZE", value: String(p.size) });
  if (p.body !== undefined) out.push({ name: "BODY", value: p.body });
  if (p.smtpUtf8 === true) out.push({ name: "SMTPUTF8" });
  if (p.ret !== undefined) out.push({ name: "RET", value: p.ret });
  if (p.envid !== undefined) out.push({ name: "ENVID", value: encodeXtext(p.envid) });
  if (p.auth !== undefined) out.push({ name: "AUTH", value: encodeXtext(p.auth) });
  out.push(...p.other);
  return out;
}

/** Parameters for RCPT TO, the ORCPT address xtext-encoded. */
export function formatRcptParams(p: RcptParams): EsmtpParam[] {
  const out: EsmtpParam[] = [];
  if (p.notify !== undefined && p.notify.length > 0) out.push({ name: "NOTIFY", value: p.notify.join(",") });
  if (p.orcpt !== undefined) {
    const { type, address } = p.orcpt;
    const encoded = isUtf8AddrType(type) ? encodeUtf8AddrXtext(address) : encodeXtext(address);
    out.push({ name: "ORCPT", value: `${type};${encoded}` });
  }
  out.push(...p.other);
  return out;
}

export function emptyMailParams(): MailParams {
  return { other: [] };
}

export function emptyRcptParams(): RcptParams {
  return { other: [] };
}

/**
 * One table of what reply codes mean, so no other module spreads magic strings around:
 * RFC 5321 §4.2 basic codes (plus the AUTH ones of RFC 4954 and SMTPUTF8's of RFC 6531) and
 * RFC 3463 enhanced status codes as registered with IANA (RFC 5248).
 */

/** Reply codes by name, for code that writes or checks them. */
export const ReplyCode = {
  SystemStatus: 211,
  Help: 214,
  ServiceReady: 220,
  Closing: 221,
  AuthSucceeded: 235,
  Ok: 250,
  UserNotLocalWillForward: 251,
  CannotVerify: 252,
  AuthContinue: 334,
  StartMailInput: 354,
  ServiceNotAvailable: 421,
  PasswordTransitionNeeded: 432,
  MailboxUnavailableTemp: 450,
  LocalError: 451,
  InsufficientStorage: 452,
  TempAuthFailure: 454,
  ParametersNotAccommodated: 455,
  SyntaxError: 500,
  ParameterSyntaxError: 501,
  NotImplemented: 502,
  BadSequence: 503,
  ParameterNotImplemented: 504,
  AuthRequired: 530,
  AuthTooWeak: 534,
  AuthInvalid: 535,
  EncryptionRequiredForAuth: 538,
  MailboxUnavailable: 550,
  UserNotLocal: 551,
  StorageExceeded: 552,
  MailboxNameNotAllowed: 553,
  TransactionFailed: 554,
  ParametersNotRecognized: 555,
} as const;

const BASIC_CODES: ReadonlyMap<number, string> = new Map([
  [211, "System status, or system help reply"],
  [214, "Help message"],
  [220, "Service ready"],
  [221, "Service closing transmission channel"],
  [235, "Authentication succeeded"],
  [250, "Requested mail action okay, completed"],
  [251, "User not local; will forward"],
  [252, "Cannot verify the user, but will accept the message and attempt delivery"],
  [334, "Authentication challenge"],
  [354, "Start mail input; end with <CRLF>.<CRLF>"],
  [421, "Service not available, closing transmission channel"],
  [432, "A password transition is needed"],
  [450, "Requested mail action not taken: mailbox unavailable"],
  [451, "Requested action aborted: local error in processing"],
  [452, "Requested action not taken: insufficient system storage"],
  [454, "Temporary authentication failure"],
  [455, "Server unable to accommodate parameters"],
  [500, "Syntax error, command unrecognized"],
  [501, "Syntax error in parameters or arguments"],
  [502, "Command not implemented"],
  [503, "Bad sequence of commands"],
  [504, "Command parameter not implemented"],
  [530, "Authentication required"],
  [534, "Authentication mechanism is too weak"],
  [535, "Authentication credentials invalid"],
  [538, "Encryption required for requested authentication mechanism"],
  [550, "Requested action not taken: mailbox unavailable"],
  [551, "User not local"],
  [552, "Requested mail action aborted: exceeded storage allocation"],
  [553, "Requested action not taken: mailbox name not allowed"],
  [554, "Transaction failed"],
  [555, "MAIL FROM/RCPT TO parameters not recognized or not implemented"],
]);

const CLASS_NAMES: Record<string, string> = {
  "2": "Positive completion",
  "3": "Positive intermediate",
  "4": "Transient negative completion",
  "5": "Permanent negative completion",
};

/** RFC 5321 §4.2.1: the second digit names the category. */
const CATEGORY_NAMES: Record<string, string> = {
  "0": "syntax",
  "1": "information",
  "2": "connections",
  "3": "unspecified",
  "4": "unspecified",
  "5": "mail system",
};

/** Meaning of a basic reply code; codes missing from the table are described by class and category. */
export function describeReplyCode(code: number): string {
  const known = BASIC_CODES.get(code);
  if (known !== undefined) return known;
  const digits = String(code);
  const cls = CLASS_NAMES[digits[0] ?? ""];
  const category = CATEGORY_NAMES[digits[1] ?? ""];
  if (digits.length !== 3 || cls === undefined) return `Not an SMTP reply code (${code})`;
  // Some servers use second digits beyond RFC 5321's 0-5 (471, 571); the class still says enough.
  return category === undefined ? cls : `${cls} (${category})`;
}

/** RFC 3463 §3.1: the class digit of an enhanced status code. */
export const ENHANCED_CLASSES: Readonly<Record<string, string>> = {
  "2": "Success",
  "4": "Persistent transient failure",
  "5": "Permanent failure",
};

/** RFC 3463 §3.2: the subject of an enhanced status code. */
export const ENHANCED_SUBJECTS: Readonly<Record<string, string>> = {
  "0": "Other or undefined status",
  "1": "Addressing status",
  "2": "Mailbox status",
  "3": "Mail system status",
  "4": "Network and routing status",
  "5": "Mail delivery protocol status",
  "6": "Message content or media status",
  "7": "Security or policy status",
};

/** Subject.detail meanings (RFC 3463 §3.3, extended by RFC 3886, 4468, 4954, 5248, 6531, 6710, 7293, 7372, 7505). */
export const ENHANCED_DETAILS: ReadonlyMap<string, string> = new Map([
  ["0.0", "Other undefined status"],
  ["1.0", "Other address status"],
  ["1.1", "Bad destination mailbox address"],
  ["1.2", "Bad destination system address"],
  ["1.3", "Bad destination mailbox address syntax"],
  ["1.4", "Destination mailbox address ambiguous"],
  ["1.5", "Destination address valid"],
  ["1.6", "Destination mailbox has moved, no forwarding address"],
  ["1.7", "Bad sender's mailbox address syntax"],
  ["1.8", "Bad sender's system address"],
  ["1.9", "Message relayed to non-compliant mailer"],
  ["1.10", "Recipient address has null MX"],
  ["2.0", "Other or undefined mailbox status"],
  ["2.1", "Mailbox disabled, not accepting messages"],
  ["2.2", "Mailbox full"],
  ["2.3", "Message length exceeds administrative limit"],
  ["2.4", "Mailing list expansion problem"],
  ["3.0", "Other or undefined mail system status"],
  ["3.1", "Mail system full"],
  ["3.2", "System not accepting network messages"],
  ["3.3", "System not capable of selected features"],
  ["3.4", "Message too big for system"],
  ["3.5", "System incorrectly configured"],
  ["3.6", "Requested priority was changed"],
  ["4.0", "Other or undefined network or routing status"],
  ["4.1", "No answer from host"],
  ["4.2", "Bad connection"],
  ["4.3", "Directory server failure"],
  ["4.4", "Unable to route"],
  ["4.5", "Mail system congestion"],
  ["4.6", "Routing loop detected"],
  ["4.7", "Delivery time expired"],
  ["5.0", "Other or undefined protocol status"],
  ["5.1", "Invalid command"],
  ["5.2", "Syntax error"],
  ["5.3", "Too many recipients"],
  ["5.4", "Invalid command arguments"],
  ["5.5", "Wrong protocol version"],
  ["5.6", "Authentication exchange line is too long"],
  ["6.0", "Other or undefined media error"],
  ["6.1", "Media not supported"],
  ["6.2", "Conversion required and prohibited"],
  ["6.3", "Conversion required but not supported"],
  ["6.4", "Conversion with loss performed"],
  ["6.5", "Conversion failed"],
  ["6.6", "Message content not available"],
  ["6.7", "Non-ASCII addresses not permitted for that sender/recipient"],
  ["6.8", "UTF-8 string reply is required, but not permitted by the SMTP client"],
  ["6.9", "UTF-8 header message cannot be transferred to one or more recipients"],
  ["7.0", "Other or undefined security status"],
  ["7.1", "Delivery not authorized, message refused"],
  ["7.2", "Mailing list expansion prohibited"],
  ["7.3", "Security conversion required but not possible"],
  ["7.4", "Security features not supported"],
  ["7.5", "Cryptographic failure"],
  ["7.6", "Cryptographic algorithm not supported"],
  ["7.7", "Message integrity failure"],
  ["7.8", "Authentication credentials invalid"],
  ["7.9", "Authentication mechanism is too weak"],
  ["7.10", "Encryption needed"],
  ["7.11", "Encryption required for requested authentication mechanism"],
  ["7.12", "A password transition is needed"],
  ["7.13", "User account disabled"],
  ["7.14", "Trust relationship required"],
  ["7.15", "Priority level is too low"],
  ["7.16", "Message is too big for the specified priority"],
  ["7.17", "Mailbox owner has changed"],
  ["7.18", "Domain owner has changed"],
  ["7.19", "RRVS test cannot be completed"],
  ["7.20", "No passing DKIM signature found"],
  ["7.21", "No acceptable DKIM signature found"],
  ["7.22", "No valid author-matched DKIM signature found"],
  ["7.23", "SPF validation failed"],
  ["7.24", "SPF validation error"],
  ["7.25", "Reverse DNS validation failed"],
  ["7.26", "Multiple authentication checks failed"],
  ["7.27", "Sender address has null MX"],
]);

/** RFC 3463 §2: class "." subject "." detail, subject and detail 1 to 3 digits. */
const ENHANCED_CODE_PATTERN = /^([245])\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Meaning of an enhanced status code ("5.1.1" gives "Bad destination mailbox address").
 * Unregistered details fall back to the subject's meaning; the class is left to the caller
 * (see {@link describeEnhancedClass}) because the detail reads the same in every class.
 */
export function describeEnhancedCode(enhanced: string): string {
  const m = ENHANCED_CODE_PATTERN.exec(enhanced);
  if (m === null) return `Not an enhanced status code (${enhanced})`;
  const subject = String(Number(m[2]));
  const detail = String(Number(m[3]));
  const known = ENHANCED_DETAILS.get(`${subject}.${detail}`);
  if (known !== undefined) return known;
  const subjectName = ENHANCED_SUBJECTS[subject];
  return subjectName === undefined ? "Unregistered status" : `${subjectName} (unregistered detail ${detail})`;
}

/** "Success", "Persistent transient failure" or "Permanent failure" for an enhanced code. */
export function describeEnhancedClass(enhanced: string): string {
  return ENHANCED_CLASSES[enhanced[0] ?? ""] ?? `Not an enhanced status code (${enhanced})`;
}

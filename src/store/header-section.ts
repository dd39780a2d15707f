/**
 * The top-level header section of a raw message, read without parsing the body: cheap enough to
 * run while the SMTP client waits for its 250.
 */

/**
 * How much of a message is read as header section. postal-mime allows 2 MiB across all parts; the
 * summary fields sit in the first few kilobytes, so a hostile endless header costs at most this.
 */
export const HEADER_SECTION_LIMIT = 256 * 1024;

/** A header field as written: name with its original case, value unfolded but not decoded. */
export interface HeaderField {
  name: string;
  value: string;
}

const decoder = new TextDecoder("utf-8");

/**
 * Octets of the header section, without the empty line that ends it (RFC 5322 §2.1). A message
 * received over SMTP uses CRLF; a bare-LF message (from a file, say) is accepted too.
 */
export function headerSectionBytes(raw: Uint8Array): Uint8Array {
  const scan = raw.subarray(0, Math.min(raw.length, HEADER_SECTION_LIMIT));
  if (startsWithLineEnd(scan)) return scan.subarray(0, 0);
  const buf = Buffer.from(scan.buffer, scan.byteOffset, scan.byteLength);
  const crlf = buf.indexOf("\r\n\r\n");
  const lf = buf.indexOf("\n\n");
  if (crlf === -1 && lf === -1) return scan;
  if (crlf === -1) return scan.subarray(0, lf);
  if (lf === -1) return scan.subarray(0, crlf);
  return scan.subarray(0, Math.min(crlf, lf));
}

function startsWithLineEnd(bytes: Uint8Array): boolean {
  return bytes[0] === 0x0a || (bytes[0] === 0x0d && bytes[1] === 0x0a);
}

/**
 * Splits a header section into fields. Folded lines are joined with one space, as Go's
 * net/textproto does (Mailpit's /headers output comes from it). Lines that are neither a field nor a
 * continuation are skipped: a catcher shows what it can.
 */
export function parseHeaderFields(section: Uint8Array | string): HeaderField[] {
  const text = typeof section === "string" ? section : decoder.decode(section);
  const fields: HeaderField[] = [];
  let current: HeaderField | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.length === 0) continue;
    if (line[0] === " " || line[0] === "\t") {
      if (current) {
        const rest = line.trim();
        if (rest.length > 0) current.value = current.value.length > 0 ? `${current.value} ${rest}` : rest;
      }
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) {
      current = undefined;
      continue;
    }
    const name = line.slice(0, colon).trimEnd();
    if (name.length === 0 || /[\s]/.test(name)) {
      current = undefined;
      continue;
    }
    current = { name, value: line.slice(colon + 1).trim() };
    fields.push(current);
  }
  return fields;
}

/** The first field named `name` (case-insensitive), or undefined. */
export function headerValue(fields: readonly HeaderField[], name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const field of fields) if (field.name.toLowerCase() === wanted) return field.value;
  return undefined;
}

/** Every field named `name`, in order. */
export function headerValues(fields: readonly HeaderField[], name: string): string[] {
  const wanted = name.toLowerCase();
  return fields.filter((field) => field.name.toLowerCase() === wanted).map((field) => field.value);
}

/**
 * Go's textproto.CanonicalMIMEHeaderKey, which names the keys of Mailpit's /headers JSON:
 * "message-id" becomes "Message-Id". Names with characters outside a token are left as they are.
 */
export function canonicalHeaderName(name: string): string {
  if (!/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(name)) return name;
  let upper = true;
  let out = "";
  for (const char of name) {
    out += upper ? char.toUpperCase() : char.toLowerCase();
    upper = char === "-";
  }
  return out;
}

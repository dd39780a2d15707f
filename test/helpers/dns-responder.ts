import * as dgram from "node:dgram";

/**
 * A tiny authoritative DNS server on 127.0.0.1 for tests (RFC 1035 wire format over UDP): MX, A
 * and AAAA from a table given in code, NOERROR/NODATA for other types of a known name, NXDOMAIN
 * for unknown names. Nothing is forwarded anywhere.
 */

export interface DnsRecords {
  /** exchange "." (or "") is a null MX (RFC 7505). */
  mx?: { priority: number; exchange: string }[];
  a?: string[];
  aaaa?: string[];
  /** Answer SERVFAIL for this name. */
  servfail?: boolean;
  /** Never answer queries for this name, to test timeouts. */
  silent?: boolean;
}

/** Names are matched case-insensitively, without a trailing dot. */
export type DnsTable = Record<string, DnsRecords>;

export interface DnsQuery {
  name: string;
  type: "A" | "AAAA" | "MX" | number;
}

export interface DnsResponder {
  port: number;
  /** "127.0.0.1:PORT", ready for createResolver(). */
  server: string;
  /** Every question received, in order. */
  queries: DnsQuery[];
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_MX = 15;
const TYPE_AAAA = 28;
const CLASS_IN = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const HEADER_BYTES = 12;
const TTL_SECONDS = 300;
/** Compression pointer to the question name, which always starts right after the header. */
const POINTER_TO_QUESTION = 0xc000 | HEADER_BYTES;

function typeName(type: number): DnsQuery["type"] {
  return type === TYPE_A ? "A" : type === TYPE_AAAA ? "AAAA" : type === TYPE_MX ? "MX" : type;
}

function normalise(name: string): string {
  return (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
}

function encodeName(name: string): Buffer {
  const labels = normalise(name)
    .split(".")
    .filter((label) => label !== "");
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, "ascii");
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split(".").map((part) => Number.parseInt(part, 10)));
}

function ipv6Bytes(address: string): Buffer {
  const [head = "", tail] = address.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const fill =
    tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill("0");
  const bytes = Buffer.alloc(16);
  [...headGroups, ...fill, ...tailGroups].forEach((group, i) => {
    bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  });
  return bytes;
}

interface Question {
  name: string;
  type: number;
  /** Offset just past QTYPE and QCLASS. */
  end: number;
}

function parseQuestion(message: Buffer): Question | undefined {
  if (message.length < HEADER_BYTES + 5 || message.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let offset = HEADER_BYTES;
  for (;;) {
    const length = message[offset];
    if (length === undefined || length > 63) return undefined;
    offset += 1;
    if (length === 0) break;
    labels.push(message.toString("ascii", offset, offset + length));
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  return { name: labels.join("."), type: message.readUInt16BE(offset), end: offset + 4 };
}

function record(type: number, rdata: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(POINTER_TO_QUESTION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(CLASS_IN, 4);
  head.writeUInt32BE(TTL_SECONDS, 6);
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

function answersFor(records: DnsRecords, type: number): Buffer[] {
  switch (type) {
    case TYPE_A:
      return (records.a ?? []).map((address) => record(TYPE_A, ipv4Bytes(address)));
    case TYPE_AAAA:
      return (records.aaaa ?? []).map((address) => record(TYPE_AAAA, ipv6Bytes(address)));
    case TYPE_MX:
      return (records.mx ?? []).map((mx) => {
        const preference = Buffer.alloc(2);
        preference.writeUInt16BE(mx.priority, 0);
        return record(TYPE_MX, Buffer.concat([preference, encodeName(mx.exchange)]));
      });
    default:
      return [];
  }
}

function respond(query: Buffer, question: Question, rcode: number, answers: Buffer[]): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  const opcodeAndRd = query.readUInt16BE(2) & 0x7900;
  // QR, AA, RA set; opcode and RD copied from the query.
  header.writeUInt16BE(0x8000 | opcodeAndRd | 0x0400 | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.subarray(HEADER_BYTES, question.end), ...answers]);
}

export async function startDnsResponder(table: DnsTable): Promise<DnsResponder> {
  const zone = new Map<string, DnsRecords>();
  for (const [name, records] of Object.entries(table)) zone.set(normalise(name), records);
  const queries: DnsQuery[] = [];
  const socket = dgram.createSocket("udp4");

  socket.on("message", (message, peer) => {
    const question = parseQuestion(message);
    if (question === undefined) return;
    queries.push({ name: question.name, type: typeName(question.type) });
    const records = zone.get(normalise(question.name));
    if (records?.silent === true) return;
    const reply =
      records === undefined
        ? respond(message, question, RCODE_NXDOMAIN, [])
        : records.servfail === true
          ? respond(message, question, RCODE_SERVFAIL, [])
          : respond(message, question, 0, answersFor(records, question.type));
    socket.send(reply, peer.port, peer.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve());
  });
  const port = socket.address().port;
  return {
    port,
    server: `127.0.0.1:${port}`,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

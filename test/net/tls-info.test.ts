import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Connection } from "../../src/net/connection.ts";
import { listen } from "../../src/net/listener.ts";
import { connect } from "../../src/net/tcp-client.ts";
import type { TlsInfo } from "../../src/net/tls-info.ts";
import { createTestPki, type PemPair, type TestPki } from "../helpers/certs.ts";

/** Real handshakes over loopback: what src/net makes of each certificate of the test PKI. */

let pki: TestPki;
/** Expired and for another name: the chain's error must win. */
let expiredWrongName: PemPair;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  expiredWrongName = await pki.ca.issue({
    commonName: "mx.other.test",
    notBefore: new Date(Date.now() - 30 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Both ends' TlsInfo: the client trusts the test CA and does not fail on a bad certificate. */
async function handshake(certificate: PemPair, host: string): Promise<{ client: TlsInfo; server: TlsInfo }> {
  let serverSide: (connection: Connection) => void = () => {};
  const accepted = new Promise<Connection>((resolve) => {
    serverSide = resolve;
  });
  const listener = await listen({ host: "127.0.0.1", port: 0, tls: certificate, onConnection: serverSide });
  cleanups.push(() => listener.close({ force: true }));
  const connection = await connect({
    host,
    port: listener.port,
    family: 4,
    timeoutMs: 5_000,
    tls: { ca: pki.ca.cert, insecure: true },
  });
  cleanups.push(() => connection.destroy());
  const client = connection.tls;
  const server = (await accepted).tls;
  if (client === undefined || server === undefined) throw new Error("no TLS session");
  return { client, server };
}

describe("chainVerified and nameMatches, apart", () => {
  test("a good certificate: chain verified, name matches, authorized", async () => {
    const { client } = await handshake(pki.server, "localhost");
    expect(client).toMatchObject({ chainVerified: true, nameMatches: true, authorized: true });
    expect(client.authorizationError).toBeUndefined();
  });

  test("a good certificate checked by IP address (no SNI): the IP SAN matches", async () => {
    const { client } = await handshake(pki.server, "127.0.0.1");
    expect(client).toMatchObject({ chainVerified: true, nameMatches: true, authorized: true });
  });

  test("expired: the chain does not verify, the name still matches", async () => {
    const { client } = await handshake(pki.expired, "localhost");
    expect(client).toMatchObject({ chainVerified: false, nameMatches: true, authorized: false });
    expect(client.authorizationError).toMatch(/expired/);
  });

  test("an unknown CA: the chain does not verify, the name still matches", async () => {
    const { client } = await handshake(pki.unknownCa, "localhost");
    expect(client).toMatchObject({ chainVerified: false, nameMatches: true, authorized: false });
    expect(client.authorizationError).toMatch(/unable to verify|issuer/);
  });

  test("a wrong name: the chain verifies, only the name is wrong", async () => {
    const { client } = await handshake(pki.wrongName, "localhost");
    expect(client).toMatchObject({ chainVerified: true, nameMatches: false, authorized: false });
    expect(client.authorizationError).toMatch(/localhost/);
  });

  test("a wrong name checked by IP address: the chain verifies, the IP is not in the certificate", async () => {
    const { client } = await handshake(pki.wrongName, "127.0.0.1");
    expect(client).toMatchObject({ chainVerified: true, nameMatches: false, authorized: false });
  });

  test("expired and a wrong name: both false, and the chain's error is the one reported", async () => {
    const { client } = await handshake(expiredWrongName, "localhost");
    expect(client).toMatchObject({ chainVerified: false, nameMatches: false, authorized: false });
    expect(client.authorizationError).toMatch(/expired/);
  });

  test("the server side: no client certificate, so no chain and nothing verified", async () => {
    const { server } = await handshake(pki.server, "localhost");
    expect(server).toMatchObject({ chainVerified: false, authorized: false, chain: [] });
    expect(server.nameMatches).toBeUndefined();
  });
});

import { createServer } from "node:net";

export const LOOPBACK = "127.0.0.1";

/**
 * A loopback TCP port that was free a moment ago: the OS picks it, we release it. Another process
 * may take it before our peer binds, so helpers that use it check the banner they get back.
 * Also handy as a port where nothing listens (connection-refused tests).
 */
export function freePort(host: string = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("freePort: the listener has no TCP address"));
        return;
      }
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}

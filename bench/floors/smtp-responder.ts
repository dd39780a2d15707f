/**
 * The floor for issue 5's figures: a compiled Bun server that answers smtp-source with the least
 * an SMTP server can do (fixed replies, the end of DATA found, nothing parsed or stored).
 * `bench/run.ts serve` runs each workload against it beside smtp-sink and `serve`: it shows what
 * Bun's own sockets allow on this machine, before any of smtpkit's work.
 * Usage: smtp-responder PORT
 */
interface Session {
  inData: boolean;
  pending: string;
}

const END_OF_DATA = "\r\n.\r\n";

function reply(session: Session, text: string): string {
  let out = "";
  session.pending += text;
  for (;;) {
    if (session.inData) {
      const end = session.pending.indexOf(END_OF_DATA);
      if (end === -1) {
        // Keep only what could be the start of the terminator.
        session.pending = session.pending.slice(-(END_OF_DATA.length - 1));
        return out;
      }
      session.pending = session.pending.slice(end + END_OF_DATA.length);
      session.inData = false;
      out += "250 2.0.0 Ok\r\n";
      continue;
    }
    const lineEnd = session.pending.indexOf("\r\n");
    if (lineEnd === -1) return out;
    const verb = session.pending.slice(0, 4).toUpperCase();
    session.pending = session.pending.slice(lineEnd + 2);
    if (verb === "EHLO") out += "250-floor\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
    else if (verb === "DATA") {
      out += "354 End data with <CR><LF>.<CR><LF>\r\n";
      session.inData = true;
      // The terminator's first CRLF is the one that ended the DATA line.
      session.pending = `\r\n${session.pending}`;
    } else if (verb === "QUIT") return `${out}221 2.0.0 Bye\r\n`;
    else out += "250 2.0.0 Ok\r\n";
  }
}

Bun.listen<Session>({
  hostname: "127.0.0.1",
  port: Number(process.argv[2]),
  socket: {
    open(socket) {
      socket.data = { inData: false, pending: "" };
      socket.write("220 floor ESMTP\r\n");
    },
    data(socket, chunk) {
      const out = reply(socket.data, chunk.toString("latin1"));
      if (out !== "") socket.write(out);
      if (out.endsWith("221 2.0.0 Bye\r\n")) socket.end();
    },
  },
});

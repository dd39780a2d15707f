/**
 * The floor for issue 3's one-message figure: a compiled Bun program that sends one message with
 * the least an SMTP client can do (no parsing beyond "a reply arrived", no MIME, no options).
 * `bench/run.ts send` times it beside smtpkit and msmtp: what smtpkit takes beyond it is ours.
 * Usage: smtp-client PORT
 */
const port = Number(process.argv[2]);
const commands = [
  "EHLO floor.test\r\n",
  "MAIL FROM:<bench@example.com>\r\n",
  "RCPT TO:<sink@example.com>\r\n",
  "DATA\r\n",
  `From: bench@example.com\r\nTo: sink@example.com\r\nSubject: bench\r\n\r\n${"x".repeat(70)}\r\n.\r\n`,
  "QUIT\r\n",
];
let next = 0;
void Bun.connect({
  hostname: "127.0.0.1",
  port,
  socket: {
    // Each reply here is one segment: smtp-sink answers one command at a time.
    data(socket) {
      const command = commands[next++];
      if (command === undefined) socket.end();
      else socket.write(command);
    },
    close() {
      process.exitCode = next === commands.length + 1 ? 0 : 1;
    },
  },
});

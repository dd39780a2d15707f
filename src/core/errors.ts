/**
 * An error that came from, or goes to, the wire: the code, enhanced code and text are exactly
 * what a server writes (go-smtp's SMTPError). A server hook throws or returns one to reject.
 */
export class SmtpError extends Error {
  constructor(
    readonly code: number,
    readonly enhanced: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = "SmtpError";
  }
}

/** The peer broke the protocol: a malformed or unexpected reply or command. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

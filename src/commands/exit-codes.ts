/** sysexits-style exit codes shared by every subcommand (README "Exit codes", DESIGN.md). */
export const ExitCode = {
  ok: 0,
  expectationFailed: 1,
  usage: 64,
  dataError: 65,
  noInput: 66,
  allRecipientsRejected: 67,
  noHost: 68,
  unavailable: 69,
  tempFail: 75,
  protocol: 76,
  noPermission: 77,
  config: 78,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A local problem with a clear one-line message and the exit code it maps to. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.usage);
  }
}

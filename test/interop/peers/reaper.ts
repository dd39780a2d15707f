// A watchdog that outlives a test run which never reached its afterAll (a crash, Ctrl-C, a forgotten
// close()). `bun test` fires no process "exit" event (measured with Bun 1.4.4), so cleanup cannot run
// inside the test process; instead one small sh loop per test process learns what we start and,
// when its stdin reaches EOF because the test process is gone, kills and removes what is left.

import type { FileSink } from "bun";

/** Ignores the signals that stop a test run, then cleans up once its input pipe closes. */
const REAPER_SCRIPT = `
trap '' INT TERM HUP
live=""
nl='
'
while IFS= read -r line; do
  case $line in
    "forget "*) live=$(printf '%s\\n' "$live" | grep -vxF -- "\${line#forget }") ;;
    *) live="$live$nl$line" ;;
  esac
done
printf '%s\\n' "$live" | while IFS= read -r entry; do
  case $entry in
    "pid "*) kill -9 "\${entry#pid }" 2>/dev/null ;;
    # dash's kill takes a negative pid as a group, but not after "--".
    "group "*) kill -9 "-\${entry#group }" 2>/dev/null ;;
  esac
done
printf '%s\\n' "$live" | while IFS= read -r entry; do
  case $entry in
    "dir "*) rm -rf -- "\${entry#dir }" ;;
  esac
done
`;

/** What to clean up: a process, a whole process group (Postfix's master and its daemons), a directory. */
export type Leftover = { pid: number } | { group: number } | { dir: string };

let reaperInput: FileSink | null = null;

function reaper(): FileSink {
  if (reaperInput === null) {
    const child = Bun.spawn(["/bin/sh", "-c", REAPER_SCRIPT], {
      stdin: "pipe",
      stdout: "ignore",
      stderr: "ignore",
    });
    // The reaper must never keep the test process alive: it is meant to outlive it.
    child.unref();
    reaperInput = child.stdin;
  }
  return reaperInput;
}

function describe(leftover: Leftover): string {
  if ("pid" in leftover) return `pid ${leftover.pid}`;
  if ("group" in leftover) return `group ${leftover.group}`;
  if (/[\r\n]/.test(leftover.dir))
    throw new Error(`reapOnExit: unusable directory name ${JSON.stringify(leftover.dir)}`);
  return `dir ${leftover.dir}`;
}

function tell(line: string): void {
  try {
    const input = reaper();
    input.write(`${line}\n`);
    input.flush();
  } catch {
    // Without a reaper only the last-resort cleanup is lost; the test itself goes on.
  }
}

/**
 * Has the leftover killed or removed if the test process ends before cleaning it up itself.
 * Returns the function to call once it has been cleaned up normally.
 */
export function reapOnExit(leftover: Leftover): () => void {
  const line = describe(leftover);
  tell(line);
  let forgotten = false;
  return () => {
    if (forgotten) return;
    forgotten = true;
    tell(`forget ${line}`);
  };
}

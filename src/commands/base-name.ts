/**
 * The last component of a path, as node:path's (POSIX) basename() gives it. Written out because
 * sendmail-args.ts runs at the start of every command and `send` builds attachments' names:
 * importing node:path for this one function loads that module on every run.
 */
export function baseName(path: string): string {
  let end = path.length;
  while (end > 0 && path[end - 1] === "/") end--;
  return path.slice(path.lastIndexOf("/", end - 1) + 1, end);
}

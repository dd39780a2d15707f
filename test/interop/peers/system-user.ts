import { readFile } from "node:fs/promises";

/** uid and gid of a local account, for handing directories to peers that drop root privileges. */
export async function systemUser(name: string): Promise<{ uid: number; gid: number }> {
  const passwd = await readFile("/etc/passwd", "utf8");
  const fields = passwd
    .split("\n")
    .find((line) => line.startsWith(`${name}:`))
    ?.split(":");
  const uid = Number(fields?.[2]);
  const gid = Number(fields?.[3]);
  if (fields === undefined || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new Error(`no user ${name} in /etc/passwd`);
  }
  return { uid, gid };
}

/** gid of a local group, or null when there is no such group. */
export async function systemGroup(name: string): Promise<number | null> {
  const groups = await readFile("/etc/group", "utf8");
  const gid = Number(
    groups
      .split("\n")
      .find((line) => line.startsWith(`${name}:`))
      ?.split(":")[2],
  );
  return Number.isInteger(gid) ? gid : null;
}

export function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

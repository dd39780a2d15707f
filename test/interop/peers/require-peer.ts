import { accessSync, constants } from "node:fs";

/** Debian's interpreter: the one python3-aiosmtpd installs into (python3 on PATH may be another). */
export const DEBIAN_PYTHON = "/usr/bin/python3";

export type PeerName =
  | "smtp-sink"
  | "smtp-source"
  | "postfix"
  | "swaks"
  | "msmtp"
  | "aiosmtpd"
  | "python-email"
  | "tmux"
  | "htpasswd";

interface PeerSpec {
  debianPackage: string;
  /** The executable that must exist, as an absolute path or a name looked up on PATH. */
  executable: string;
  /** A Python module that must import under DEBIAN_PYTHON. */
  pythonModule?: string;
  /** A Perl module the peer needs but Debian only recommends, and the package that has it. */
  perlModule?: { name: string; debianPackage: string };
}

const PEERS: Record<PeerName, PeerSpec> = {
  "smtp-sink": { debianPackage: "postfix", executable: "/usr/sbin/smtp-sink" },
  "smtp-source": { debianPackage: "postfix", executable: "/usr/sbin/smtp-source" },
  postfix: { debianPackage: "postfix", executable: "/usr/sbin/postfix" },
  // Without Net::SSLeay, swaks's --tls and --tlsc exit 10 ("TLS not available").
  swaks: {
    debianPackage: "swaks",
    executable: "swaks",
    perlModule: { name: "Net::SSLeay", debianPackage: "libnet-ssleay-perl" },
  },
  msmtp: { debianPackage: "msmtp", executable: "msmtp" },
  aiosmtpd: { debianPackage: "python3-aiosmtpd", executable: DEBIAN_PYTHON, pythonModule: "aiosmtpd" },
  "python-email": { debianPackage: "python3", executable: DEBIAN_PYTHON, pythonModule: "email" },
  tmux: { debianPackage: "tmux", executable: "tmux" },
  htpasswd: { debianPackage: "apache2-utils", executable: "htpasswd" },
};

export class MissingPeerError extends Error {
  constructor(peer: PeerName, detail: string, debianPackage = PEERS[peer].debianPackage) {
    super(
      `interop peer "${peer}" is missing (${detail}): install the Debian package "${debianPackage}", ` +
        "e.g. by running scripts/install-peers as root",
    );
    this.name = "MissingPeerError";
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const resolved = new Map<PeerName, string>();

/**
 * Returns the peer's executable path or throws MissingPeerError. Interop tests call this (every
 * start/run helper does) so that a missing peer fails the test instead of skipping it.
 */
export function requirePeer(peer: PeerName): string {
  const known = resolved.get(peer);
  if (known !== undefined) return known;
  const spec = PEERS[peer];
  const path = spec.executable.startsWith("/") ? spec.executable : Bun.which(spec.executable);
  if (path === null || !isExecutable(path)) {
    throw new MissingPeerError(peer, `${spec.executable} not found`);
  }
  if (spec.pythonModule !== undefined) {
    const check = Bun.spawnSync([path, "-c", `import ${spec.pythonModule}`], {
      stdout: "ignore",
      stderr: "pipe",
    });
    if (check.exitCode !== 0) {
      throw new MissingPeerError(
        peer,
        `${path} cannot import ${spec.pythonModule}: ${check.stderr.toString().trim()}`,
      );
    }
  }
  const perlModule = spec.perlModule;
  if (perlModule !== undefined) {
    const check = Bun.spawnSync(["perl", `-M${perlModule.name}`, "-e", "1"], {
      stdout: "ignore",
      stderr: "ignore",
    });
    if (check.exitCode !== 0) {
      throw new MissingPeerError(peer, `perl cannot load ${perlModule.name}`, perlModule.debianPackage);
    }
  }
  resolved.set(peer, path);
  return path;
}

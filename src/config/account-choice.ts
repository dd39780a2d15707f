import type { Account } from "./accounts.ts";

/**
 * The account a command uses: the one --account names, else the default one, but none when
 * --server alone says where to send. Then the file is not read at all, as msmtp's --host reads no
 * configuration: an account's password is never offered to a server the account does not name.
 * The parser (accounts.ts) loads only when the file is read, so a `send --server` does not carry it.
 */
export async function chooseAccount(flags: {
  config?: string;
  account?: string;
  server?: string;
}): Promise<Account | undefined> {
  if (flags.server !== undefined && flags.account === undefined) return undefined;
  const { loadAccounts, pickAccount } = await import("./accounts.ts");
  return pickAccount(await loadAccounts(flags.config), flags.account);
}

import { expect, test } from "bun:test";
import { leaseOwnerAlive, newLeaseOwner, retireLeaseOwner } from "../../src/queue/lease-owner.ts";

test("an owner of this process is alive until retired", () => {
  const owner = newLeaseOwner("here.test");
  expect(owner).toMatch(new RegExp(`^here\\.test:${process.pid}:[0-9a-f]{12}$`));
  expect(leaseOwnerAlive(owner, "here.test")).toBe(true);
  retireLeaseOwner(owner);
  expect(leaseOwnerAlive(owner, "here.test")).toBe(false);
});

test("an owner from this host whose process is gone is dead; a running one is alive", async () => {
  const child = Bun.spawn([process.execPath, "-e", "0"]);
  await child.exited;
  expect(leaseOwnerAlive(`here.test:${child.pid}:abc`, "here.test")).toBe(false);
  expect(leaseOwnerAlive(`here.test:1:abc`, "here.test")).toBe(true);
});

test("owners on other hosts, and names that are not ours, are trusted until their lease runs out", () => {
  expect(leaseOwnerAlive("elsewhere.test:1:abc", "here.test")).toBe(true);
  expect(leaseOwnerAlive("nonsense", "here.test")).toBe(true);
  expect(leaseOwnerAlive("here.test:notapid:abc", "here.test")).toBe(true);
  expect(leaseOwnerAlive("a:b:c:d", "a:b")).toBe(true);
});

import { describe, expect, test } from "bun:test";
import { basename } from "node:path";
import fc from "fast-check";
import { baseName } from "../../src/commands/base-name.ts";

describe("baseName", () => {
  test("the last component, as node:path's basename gives it", () => {
    const cases = ["/usr/sbin/sendmail", "sendmail", "report.pdf", "a/b/", "a//", "/", "//", "", "./x", "/a"];
    for (const path of cases) expect(baseName(path)).toBe(basename(path));
    expect(baseName("/usr/sbin/sendmail")).toBe("sendmail");
    expect(baseName("docs/report.pdf")).toBe("report.pdf");
  });

  test("agrees with node:path's basename on arbitrary paths", () => {
    const path = fc
      .array(fc.constantFrom("a", "b", ".", "/", " ", "é"), { maxLength: 12 })
      .map((c) => c.join(""));
    fc.assert(fc.property(path, (p) => expect(baseName(p)).toBe(basename(p))));
  });
});

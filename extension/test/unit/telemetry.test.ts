import { describe, expect, it } from "vitest";
import { shownParams } from "../../src/telemetry";

const item = (args: unknown[] | undefined, command = "vllmCompanion.didAcceptCompletion") => ({
  insertText: "compute_total(items)",
  command: { title: "accepted", command, arguments: args },
});

describe("shownParams", () => {
  it("reports the first item of a list or an array, with its id", () => {
    expect(shownParams({ items: [item(["s7"]), item(["s8"])] })).toEqual({
      item: { insertText: "compute_total(items)", command: { title: "accepted", command: "vllmCompanion.didAcceptCompletion", arguments: ["s7"] } },
    });
    expect(shownParams([item(["s9"])])?.item.command?.arguments).toEqual(["s9"]);
  });

  it("reports nothing for empty answers or items that are not ours", () => {
    expect(shownParams(undefined)).toBeUndefined();
    expect(shownParams(null)).toBeUndefined();
    expect(shownParams({ items: [] })).toBeUndefined();
    expect(shownParams([item(["s1"], "other.command")])).toBeUndefined();
    expect(shownParams([item([])])).toBeUndefined();
    expect(shownParams([{ insertText: "x" }])).toBeUndefined();
  });
});

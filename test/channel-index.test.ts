import { describe, expect, test } from "bun:test";
import type { Channel } from "../src/core/channel.ts";
import { ChannelIndex } from "../src/core/eventlog/channel-index.ts";

describe("channel index", () => {
  function filled(): ChannelIndex {
    const index = new ChannelIndex();
    // 1..20: odd ids on topic:a, even on topic:b, every fifth also on everyone; names alternate on topic:a.
    for (let id = 1; id <= 20; id++) {
      const channels: Channel[] = [id % 2 ? "topic:a" : "topic:b", ...(id % 5 === 0 ? (["everyone"] as const) : [])];
      index.add(id, channels, id % 4 === 1 ? "product" : "notification");
    }
    return index;
  }

  test("after: the channels' ids above an id, merged in order, each once, at most the limit", () => {
    const index = filled();
    expect(index.after(0, ["topic:a"], 100)).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
    expect(index.after(14, ["topic:a", "everyone"], 100)).toEqual([15, 17, 19, 20]);
    expect(index.after(4, ["topic:b", "everyone", "topic:b"], 4)).toEqual([5, 6, 8, 10]);
    expect(index.after(20, ["topic:a", "topic:b"], 10)).toEqual([]);
    expect(index.after(0, ["topic:none"], 10)).toEqual([]);
  });

  test("newest: by name, newest first, between above and upTo, at most the limit", () => {
    const index = filled();
    expect(index.newest(["topic:a"], "product", {})).toEqual([17, 13, 9, 5, 1]);
    expect(index.newest(["topic:a", "everyone"], "notification", { upTo: 15 })).toEqual([15, 11, 10, 7, 3]);
    expect(index.newest(["topic:b"], "notification", { above: 14, limit: 2 })).toEqual([20, 18]);
    expect(index.newest(["topic:a", "everyone", "topic:b"], "notification", { limit: 3 })).toEqual([20, 19, 18]);
    expect(index.newest(["topic:a"], "unknown", {})).toEqual([]);
  });

  test("an event that names a channel twice is indexed once", () => {
    const index = new ChannelIndex();
    index.add(1, ["topic:a", "topic:a"], "notification");
    index.add(2, ["topic:a"], "notification");
    expect(index.after(0, ["topic:a"], 10)).toEqual([1, 2]);
    expect(index.newest(["topic:a"], "notification", {})).toEqual([2, 1]);
  });

  test("dropUpTo forgets what retention dropped, and channels left empty", () => {
    const index = filled();
    index.dropUpTo(16);
    expect(index.after(0, ["topic:a", "topic:b", "everyone"], 100)).toEqual([17, 18, 19, 20]);
    expect(index.newest(["topic:a"], "product", {})).toEqual([17]);
    index.dropUpTo(20);
    expect(index.after(0, ["topic:a", "topic:b", "everyone"], 100)).toEqual([]);
    index.add(21, ["topic:a"], "product");
    expect(index.newest(["topic:a"], "product", {})).toEqual([21]);
  });
});

import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { eventually, openStream, signIn, startTestHerald, type SseReader } from "./helpers.ts";

let herald: Herald;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await herald.stop();
});

/** Parses the Prometheus text format strictly: every line a comment of HELP/TYPE, or `name{labels} value`. */
function parse(text: string): { types: Map<string, string>; samples: Map<string, number> } {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE") types.set(meta[2]!, meta[3]!);
      continue;
    }
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(
        line,
      );
    if (!sample) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    samples.set(sample[1]! + (sample[2] ?? ""), Number(sample[3]));
  }
  return { types, samples };
}

describe("GET /metrics", () => {
  test("parses as Prometheus text and matches the streams and events", async () => {
    herald = startTestHerald();
    const alice = await signIn(herald, "alice");
    readers.push(await openStream(herald, "?topic=a,b", alice.cookie), await openStream(herald, "?topic=a"));
    await eventually(() => herald.hub.clientCount === 2, "two streams");
    await herald.hub.publishToTopic("a", { event: "notification", data: "x" });
    await herald.hub.publishToUser("alice", { event: "notification", data: "y" });
    const before = parse(await (await fetch(`${herald.url}/metrics`)).text());
    expect(before.samples.get("herald_streams_open")).toBe(2);
    expect(before.samples.get('herald_channel_subscriptions{kind="topic"}')).toBe(3);
    expect(before.samples.get('herald_channel_subscriptions{kind="user"}')).toBe(1);
    expect(before.samples.get('herald_channel_subscriptions{kind="everyone"}')).toBe(2);
    expect(before.samples.get("herald_events_published_total")).toBe(2);
    expect(before.samples.get("herald_events_delivered_total")).toBe(3);
    expect(before.samples.get("herald_bytes_written_total")).toBeGreaterThan(0);
    expect(before.samples.get('herald_streams_dropped_total{reason="slow"}')).toBe(0);
    expect(before.samples.get('herald_publish_duration_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(before.samples.get("herald_publish_duration_seconds_count")).toBe(2);
    expect(before.types.get("herald_publish_duration_seconds")).toBe("histogram");
    expect(before.types.get("herald_events_published_total")).toBe("counter");

    // Bytes stay counted after a stream closes.
    const bytes = before.samples.get("herald_bytes_written_total")!;
    readers.pop()!.close();
    await eventually(() => herald.hub.clientCount === 1, "one stream");
    const after = parse(await (await fetch(`${herald.url}/metrics`)).text());
    expect(after.samples.get("herald_streams_open")).toBe(1);
    expect(after.samples.get("herald_bytes_written_total")).toBe(bytes);
  });

  test("histogram buckets are cumulative", async () => {
    herald = startTestHerald();
    for (let i = 0; i < 5; i++) await herald.hub.publishToEveryone({ event: "notification", data: String(i) });
    const res = await fetch(`${herald.url}/metrics`);
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    const { samples } = parse(await res.text());
    const buckets = [...samples]
      .filter(([name]) => name.startsWith("herald_publish_duration_seconds_bucket"))
      .map(([, v]) => v);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(buckets.at(-1)).toBe(5);
  });
});

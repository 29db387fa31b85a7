import { describe, expect, test } from "bun:test";
import { createLogger } from "../src/server/logger.ts";
import { eventually, idsOf, openStream, postForm, signIn, startTestHerald } from "./helpers.ts";

describe("structured logs", () => {
  test("writes JSON lines at the level and above", () => {
    const lines: string[] = [];
    const log = createLogger("warn", (line) => lines.push(line));
    log.info("quiet");
    log.warn("loud", { n: 1 });
    log.error("louder");
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      { time: expect.any(String), level: "warn", msg: "loud", n: 1 },
      { time: expect.any(String), level: "error", msg: "louder" },
    ]);
    const off = createLogger("off", (line) => lines.push(line));
    off.error("nothing");
    expect(lines).toHaveLength(2);
  });

  test("one line per stream opened and closed and per publish, never a cookie, token or secret", async () => {
    const lines: string[] = [];
    const secret = "the-signing-secret-0123456789";
    const token = "the-publish-token-0123456789";
    const herald = startTestHerald(
      { secret, publishTokens: [token] },
      { log: createLogger("info", (line) => lines.push(line)) },
    );
    try {
      const id = await idsOf(herald);
      const alice = await signIn(herald, "alice");
      const reader = await openStream(herald, "?topic=orders", alice.cookie);
      await eventually(() => herald.hub.clientCount === 1, "one stream");
      await postForm(herald, "/notify", { target: "topic:orders", message: "hello" }, { session: alice });
      await fetch(`${herald.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ target: "user:alice", message: "from the api" }),
      });
      await fetch(`${herald.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(Array.from({ length: 12 }, (_, i) => ({ target: `topic:t${i}`, message: "batch" }))),
      });
      reader.close();
      await eventually(() => lines.some((line) => line.includes('"stream closed"')), "the close line");

      const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(entries.find((e) => e.msg === "stream opened")).toMatchObject({
        level: "info",
        user: "alice",
        ip: "127.0.0.1",
        topics: "orders",
        clients: 1,
      });
      expect(entries.find((e) => e.msg === "stream closed")).toMatchObject({ user: "alice", events: 2 });
      const published = entries.filter((e) => e.msg === "published");
      expect(published).toEqual([
        expect.objectContaining({
          id: id(1),
          event: "notification",
          targets: "topic:orders",
          delivered: 1,
          by: "user:alice",
        }),
        expect.objectContaining({ id: id(2), targets: "user:alice", delivered: 1, by: "token#1" }),
        // A batch is one line.
        expect.objectContaining({
          ids: `${id(3)}..${id(14)}`,
          events: 12,
          names: "notification",
          targets: "topic:t0,topic:t1,topic:t2,topic:t3,topic:t4,topic:t5,topic:t6,topic:t7,topic:t8,topic:t9,… (12)",
          delivered: 0,
          by: "token#1",
        }),
      ]);
      const all = lines.join("\n");
      for (const forbidden of [secret, token, alice.csrf, alice.cookie.split("herald_session=")[1]!, "herald_csrf="]) {
        expect(all).not.toContain(forbidden);
      }
    } finally {
      await herald.stop();
    }
  });
});

import { expect, test } from "bun:test";
import { Writer, type Due } from "../src/core/writer.ts";

/** A stream whose send takes `costMs` of CPU, recording each send in `log`. */
function stream(name: string, log: string[], costMs: number, onSend?: () => void): Due {
  return {
    send() {
      const until = performance.now() + costMs;
      while (performance.now() < until);
      log.push(name);
      onSend?.();
    },
  };
}

test("a fan-out larger than a slice goes out in several turns, each stream once, in order", async () => {
  const writer = new Writer();
  const log: string[] = [];
  const names = Array.from({ length: 400 }, (_, i) => `s${i}`);
  // 400 streams at 0.05 ms each is 20 ms of sends: many slices of at most 0.5 ms (checked every 32).
  for (const name of names) writer.due(stream(name, log, 0.05));
  let turnsWhileWriting = 0;
  const tick = () => {
    if (log.length < names.length) {
      turnsWhileWriting++;
      setImmediate(tick);
    }
  };
  setImmediate(tick);
  while (log.length < names.length) await Bun.sleep(1);
  expect(log).toEqual(names);
  // The event loop took other work between slices.
  expect(turnsWhileWriting).toBeGreaterThan(3);
});

test("streams that become due between slices are sent in the same pass, after those before them", async () => {
  const writer = new Writer();
  const log: string[] = [];
  const first = Array.from({ length: 200 }, (_, i) => `a${i}`);
  for (const name of first) writer.due(stream(name, log, 0.05));
  // Once the first slice has gone, more streams become due (as a publish between slices makes them),
  // among them one that was already sent in this pass and has a new frame.
  const later = Array.from({ length: 100 }, (_, i) => `b${i}`);
  let added = false;
  const add = () => {
    if (log.length === 0) return void setImmediate(add);
    added = true;
    for (const name of later) writer.due(stream(name, log, 0.05));
    writer.due(stream("a0-again", log, 0));
  };
  setImmediate(add);
  while (log.length < first.length + later.length + 1) await Bun.sleep(1);
  await Bun.sleep(5);
  expect(added).toBe(true);
  expect(log).toEqual([...first, ...later, "a0-again"]);
  // A new pass starts from an empty list: nothing is sent twice.
  writer.due(stream("c", log, 0));
  await Bun.sleep(5);
  expect(log.at(-1)).toBe("c");
  expect(log.length).toBe(first.length + later.length + 2);
});

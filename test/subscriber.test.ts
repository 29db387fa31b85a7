/**
 * A stream's socket, seen from the client's side: a client that stops reading is disconnected
 * for real when it is cut, and what herald chose to send (a replay, a snapshot) reaches a client
 * that stops and reads again, however much of it there is.
 *
 * The client is a Python process with a small receive buffer (Bun's own sockets always read).
 * It reads only when told, and meanwhile watches its socket's TCP state, so a test sees the
 * connection end (FIN or RST) without reading.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { Herald } from "../src/app.ts";
import { idsOf, openStream, seq, startTestHerald, type SseReader, type TestConfig } from "./helpers.ts";

const CLIENT = String.raw`
import json, select, socket, sys, time
port, path, headers, body_path = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
STATES = {1: "ESTABLISHED", 7: "CLOSE", 8: "CLOSE_WAIT"}
def out(**message):
    sys.stdout.write(json.dumps(message) + "\n"); sys.stdout.flush()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n%s\r\n" % (path, "".join("%s: %s\r\n" % kv for kv in headers.items()))).encode())
body = open(body_path, "wb")
raw = bytearray(); head = True; frames = b""; ids = 0; end = None; opened = False; terminated = False
def feed(data):
    # Undoes the chunked encoding into the body file; counts the frames that carry an id.
    global raw, head, frames, ids, end, opened, terminated
    raw += data
    if head:
        at = raw.find(b"\r\n\r\n")
        if at < 0: return
        del raw[:at + 4]; head = False
    while True:
        line = raw.find(b"\r\n")
        if line < 0: return
        size = int(raw[:line], 16)
        if size == 0:
            # The response's end; the connection may stay open after it (HTTP/1.1 keep-alive).
            terminated = True; raw.clear(); return
        if len(raw) < line + 2 + size + 2: return
        chunk = bytes(raw[line + 2:line + 2 + size]); del raw[:line + 2 + size + 2]
        body.write(chunk); body.flush()
        opened = opened or b"retry: " in chunk
        frames += chunk
        parts = frames.split(b"\n\n"); frames = parts.pop()
        ids += sum(1 for f in parts if f.startswith(b"id: ") or b"\nid: " in f)
def read_until(count, idle):
    global end
    s.settimeout(idle)
    try:
        while end is None and ids < count:
            data = s.recv(1 << 20)
            if not data: end = "closed"; break
            feed(data)
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        end = "reset"
    return end
def state():
    return STATES.get(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0], "other")
# The stream's first bytes (its retry line), then it stops reading until told.
while not opened and end is None and not terminated:
    data = s.recv(4096)
    if not data: end = "closed"; break
    feed(data)
out(t="open")
last = None
for line in iter(sys.stdin.readline, ""):
    command = line.split()
    if command[0] == "read":
        result = read_until(int(command[1]), float(command[2]))
        out(t="read", events=ids, end=result, terminated=terminated)
        if end is not None: break
    elif command[0] == "watch":
        # Without reading: report the socket's TCP state when it changes, until "read" arrives.
        last = state(); out(t="state", state=last)
        while not select.select([sys.stdin], [], [], 0.02)[0]:
            now = state()
            if now != last:
                last = now; out(t="state", state=now)
`;

interface ClientMessage {
  t: "open" | "state" | "read";
  state?: string;
  events?: number;
  /**
   * How the connection ended ("closed": FIN, "reset": RST), "timeout" when nothing came for the idle time, `null` while
   * open.
   */
  end?: string | null;
  /** Whether the response's last chunk came. */
  terminated?: boolean;
}

/** A client that reads only when told (see `CLIENT`). */
class PausedClient {
  readonly #proc: Subprocess<"pipe", "pipe", "inherit">;
  readonly #bodyFile: string;
  readonly #messages: ClientMessage[] = [];
  #waiters = new Set<() => void>();

  constructor(herald: Herald, path: string, headers: Record<string, string> = {}) {
    const dir = mkdtempSync(join(tmpdir(), "herald-client-"));
    dirs.push(dir);
    this.#bodyFile = join(dir, "body");
    const { port } = new URL(herald.url);
    this.#proc = Bun.spawn(["python3", "-c", CLIENT, port, path, JSON.stringify(headers), this.#bodyFile], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
    });
    void this.#pump();
  }

  async #pump(): Promise<void> {
    let text = "";
    for await (const chunk of this.#proc.stdout) {
      text += new TextDecoder().decode(chunk);
      const lines = text.split("\n");
      text = lines.pop()!;
      for (const line of lines) this.#messages.push(JSON.parse(line) as ClientMessage);
      for (const wake of this.#waiters) wake();
    }
  }

  /** Waits for the first message after `from` that `check` accepts, failing after `timeoutMs`. */
  async next(
    check: (message: ClientMessage) => boolean,
    what: string,
    timeoutMs: number,
    from = 0,
  ): Promise<ClientMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.#messages.slice(from).find(check);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out waiting for ${what}; the client said ${JSON.stringify(this.#messages)}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  get said(): number {
    return this.#messages.length;
  }

  #send(command: string): void {
    this.#proc.stdin.write(`${command}\n`);
    this.#proc.stdin.flush();
  }

  /** Starts reporting the socket's TCP state, without reading. */
  watch(): void {
    this.#send("watch");
  }

  /**
   * Reads until `events` frames with an id have come in all, the connection ends, or nothing comes for `idleS` seconds;
   * then stops again.
   */
  async read(events: number, idleS = 5, timeoutMs = 30_000): Promise<ClientMessage> {
    const from = this.said;
    this.#send(`read ${events} ${idleS}`);
    return this.next((m) => m.t === "read", "the read to finish", timeoutMs, from);
  }

  /** The frames received so far that carry an id, as a browser parses them. */
  frames(): Array<{ event: string; id: string; data: string }> {
    const text = readFileSync(this.#bodyFile, "utf8");
    const frames: Array<{ event: string; id: string; data: string }> = [];
    for (const block of text.split("\n\n").slice(0, -1)) {
      let event = "message";
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("id: ")) id = line.slice(4);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (id !== undefined) frames.push({ event, id, data: data.join("\n") });
    }
    return frames;
  }

  /** Every byte of the response body received so far. */
  body(): string {
    return readFileSync(this.#bodyFile, "utf8");
  }

  kill(): void {
    this.#proc.kill();
  }
}

let herald: Herald | undefined;
const clients: PausedClient[] = [];
const readers: SseReader[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.kill();
  for (const reader of readers.splice(0)) reader.close();
  await herald?.stop();
  herald = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function start(config: TestConfig): Herald {
  herald = startTestHerald(config);
  return herald;
}

async function pausedClient(h: Herald, path: string, headers: Record<string, string> = {}): Promise<PausedClient> {
  const client = new PausedClient(h, path, headers);
  clients.push(client);
  await client.next((m) => m.t === "open", "the stream to open", 5_000);
  return client;
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** Publishes 15 kB events to `topic` until the hub drops a stream as slow; returns how many it published. */
async function floodUntilDropped(h: Herald, topic: string, from: number): Promise<number> {
  const chunk = "x".repeat(15_000);
  let i = from;
  while (h.hub.stats().droppedSlow === 0) {
    if (i > from + 2_000) throw new Error("no stream was dropped as slow");
    await h.hub.publishToTopic(topic, { event: "notification", data: `${i++} ${chunk}` });
    // The writer hands frames over at the end of the turn; let it, as a live server would.
    await Bun.sleep(0);
  }
  return i - 1;
}

describe("a stream cut as slow or stale", () => {
  for (const reason of ["slow", "stale"] as const) {
    test(`is disconnected within 2 s while its client does not read: the client's socket sees the end (${reason})`, async () => {
      const h = start(
        reason === "slow" ? { maxBuffer: 256 * 1024 } : { maxBuffer: 64 * 1024 * 1024, clientTimeoutMs: 500 },
      );
      const client = await pausedClient(h, "/sse?topic=flood");
      await until(() => h.hub.clientCount === 1, "the stream to join");
      client.watch();
      await client.next((m) => m.t === "state" && m.state === "ESTABLISHED", "the socket's state", 5_000);
      const from = client.said;
      if (reason === "slow") await floodUntilDropped(h, "flood", 1);
      else {
        const chunk = "y".repeat(15_000);
        for (let i = 1; ![...h.hub.subscribers()].some((s) => s.drainingSince !== null); i++) {
          if (i > 2_000) throw new Error("the client's socket never filled");
          await h.hub.publishToTopic("flood", { event: "notification", data: `${i} ${chunk}` });
          await Bun.sleep(0);
        }
        await until(() => h.hub.stats().droppedStale === 1, "the stream to be dropped as stale", 5_000);
      }
      // Bounded, not timed: on the code before this change, the connection stayed open for good.
      const ended = await client.next(
        (m) => m.t === "state" && m.state !== "ESTABLISHED",
        "the connection to end",
        2_000,
        from,
      );
      expect(["CLOSE", "CLOSE_WAIT"]).toContain(ended.state!);
      expect(h.hub.clientCount).toBe(0);
    }, 30_000);
  }

  test("a client that reads again sees the end at once, and resuming from the last id it read gets every event once, in order", async () => {
    const h = start({ maxBuffer: 256 * 1024 });
    const client = await pausedClient(h, "/sse?topic=flood");
    await until(() => h.hub.clientCount === 1, "the stream to join");
    await h.hub.publishToTopic("flood", { event: "notification", data: "1 first" });
    // The snapshot a stream without an id starts with, then the event.
    expect((await client.read(2)).events).toBe(2);
    const last = await floodUntilDropped(h, "flood", 2);
    const decided = Date.now();
    // Back from the tunnel a moment later: what is left, then the connection's end (FIN or RST),
    // not only the response's last chunk on a connection that stays open.
    await Bun.sleep(500);
    const read = await client.read(Number.MAX_SAFE_INTEGER, 5);
    expect(["closed", "reset"]).toContain(read.end!);
    expect(Date.now() - decided).toBeLessThan(2_000);

    // What an EventSource does next: reconnect with the last id it saw.
    const seen = client.frames().filter((f) => f.event !== "snapshot");
    const lastSeen = seen.at(-1)!.id;
    const back = await openStream(h, "?topic=flood", undefined, { "last-event-id": lastSeen });
    readers.push(back);
    await back.event(last - seq(lastSeen), 10_000);
    const ids = [...seen, ...back.events].map((e) => seq(e.id));
    expect(ids).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    expect([...seen, ...back.events].map((e) => e.data.split(" ")[0])).toEqual(ids.map(String));
  }, 30_000);
});

describe("replay and snapshot are paced by the socket", () => {
  test("a resume after 20 MB of missed events gets all of them, in order, once each, and live events after", async () => {
    // The default slow-consumer limit (1 MiB): the replay is twenty times larger. The client is
    // anonymous, so its replay cap is raised above the 2,000 events it missed.
    const h = start({ replayMaxAnonymous: 10_000 });
    await h.hub.publishToTopic("big", { event: "notification", data: "1 seen" });
    const chunk = "z".repeat(10_000);
    const missed = 2_000;
    for (let i = 2; i <= missed + 1; i++)
      await h.hub.publishToTopic("big", { event: "notification", data: `${i} ${chunk}` });

    const client = await pausedClient(h, "/sse?topic=big", { "Last-Event-ID": (await idsOf(h))(1) });
    // The client does not read: the replay fills its socket and waits.
    await until(() => [...h.hub.subscribers()].some((s) => s.drainingSince !== null), "the client's socket to fill");
    // Live events published meanwhile come after the replay.
    for (let i = missed + 2; i <= missed + 51; i++)
      await h.hub.publishToTopic("big", { event: "notification", data: `${i} live` });

    const read = await client.read(missed + 50, 5, 60_000);
    expect(read.end).toBeNull();
    const frames = client.frames();
    const ids = frames.map((f) => seq(f.id));
    expect(ids).toEqual(Array.from({ length: missed + 50 }, (_, i) => i + 2));
    expect(frames.every((f) => f.data === `${seq(f.id)} ${seq(f.id) <= missed + 1 ? chunk : "live"}`)).toBe(true);
    expect(h.hub.stats().droppedSlow).toBe(0);
    expect(h.hub.clientCount).toBe(1);

    await h.hub.publishToTopic("big", { event: "notification", data: "after" });
    expect((await client.read(missed + 51)).events).toBe(missed + 51);
    expect(client.frames().at(-1)!.data).toBe("after");
  }, 90_000);

  test("an urgent event published during a replay reaches the client before the rest of the replay, and ids stay exact", async () => {
    const h = start({ replayMaxAnonymous: 10_000 });
    await h.hub.publishToTopic("big", { event: "notification", data: "1 seen" });
    const chunk = "z".repeat(10_000);
    const missed = 300;
    for (let i = 2; i <= missed + 1; i++)
      await h.hub.publishToTopic("big", { event: "notification", data: `${i} ${chunk}` });

    const client = await pausedClient(h, "/sse?topic=big", { "Last-Event-ID": (await idsOf(h))(1) });
    await until(() => [...h.hub.subscribers()].some((s) => s.drainingSince !== null), "the client's socket to fill");
    const urgent = await h.hub.publishToTopic("big", { event: "urgent", data: "fire" });
    await h.hub.publishToTopic("big", { event: "notification", data: `${missed + 3} live` });

    await client.read(missed + 2, 5, 60_000);
    const blocks = client.body().split("\n\n");
    const at = (test: (block: string) => boolean) => blocks.findIndex(test);
    const fire = at((b) => b.includes("data: fire"));
    const lastReplayed = at((b) => b.includes(`data: ${missed + 1} `));
    // Overtook what the replay had not yet handed to the socket, and carried no id there.
    expect(fire).toBeGreaterThan(-1);
    expect(fire).toBeLessThan(lastReplayed);
    expect(blocks[fire]).toBe("event: urgent\ndata: fire");
    // Its id came in order, alone, where the event would have been: resume stays exact.
    expect(at((b) => b === `id: ${urgent.id}`)).toBeGreaterThan(lastReplayed);
    const ids = client.frames().map((f) => seq(f.id));
    // Every id once, in order: the replay's, the urgent event's (the id-only frame) and the live one.
    expect(ids).toEqual(Array.from({ length: missed + 2 }, (_, i) => i + 2));
  }, 60_000);

  test("a first snapshot larger than HERALD_MAX_BUFFER reaches a client that stops and reads again, whole", async () => {
    const h = start({ inboxSize: 300 });
    const chunk = "s".repeat(20_000);
    for (let i = 1; i <= 300; i++)
      await h.hub.publishToEveryone({ event: "notification", data: `<li id="n-${i}">${chunk}</li>` });

    // 6 MB of snapshot against the default 1 MiB limit.
    const client = await pausedClient(h, "/sse");
    await until(() => [...h.hub.subscribers()].some((s) => s.drainingSince !== null), "the client's socket to fill");
    const read = await client.read(1, 5);
    expect(read.end).toBeNull();
    const [snapshot] = client.frames();
    expect(snapshot!.event).toBe("snapshot");
    expect(seq(snapshot!.id)).toBe(300);
    for (let i = 1; i <= 300; i++) expect(snapshot!.data).toContain(`<li id="n-${i}">${chunk}</li>`);
    expect(h.hub.stats().droppedSlow).toBe(0);

    await h.hub.publishToEveryone({ event: "notification", data: "<li>live</li>" });
    expect((await client.read(2)).events).toBe(2);
    expect(client.frames()[1]).toEqual({ event: "notification", id: (await idsOf(h))(301), data: "<li>live</li>" });
  }, 60_000);
});

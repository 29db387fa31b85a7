/**
 * herald as a real child process (`bun src/main.ts`), for fault tests: kill it, restart it on
 * the same data directory, read its memory. And a client that stops reading, which only another
 * process can be (Bun's own sockets always read).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

const entry = join(import.meta.dir, "..", "src", "main.ts");

export interface HeraldProcess {
  url: string;
  pid: number;
  proc: Subprocess;
  /** Resident memory in KiB, from /proc. */
  rssKb(): number;
  /** Resident memory in KiB after a full garbage collection (SIGUSR2). */
  settledRssKb(): Promise<number>;
  /** Sends `signal` and waits for the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number>;
}

/** Starts herald on a free port with `env` on top of quiet defaults, and waits until it listens. */
export async function spawnHerald(env: Record<string, string>): Promise<HeraldProcess> {
  const proc = Bun.spawn([process.execPath, entry], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", HERALD_LOG: "warn", HERALD_HEARTBEAT_MS: "60000", ...env },
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`herald exited before listening: ${text}`);
    text += new TextDecoder().decode(value);
    const url = /listening on (http:\/\/\S+)/.exec(text)?.[1];
    if (url) {
      // Keep the pipe drained so that log lines never block the server.
      void (async () => {
        while (!(await reader.read()).done);
      })();
      const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))![1]);
      return {
        url,
        pid: proc.pid,
        proc,
        rssKb,
        async settledRssKb() {
          proc.kill("SIGUSR2");
          await Bun.sleep(300);
          return rssKb();
        },
        async kill(signal = "SIGTERM") {
          proc.kill(signal);
          return proc.exited;
        },
      };
    }
  }
}

/** Publishes through the API and returns the acknowledged id. */
export async function apiPublish(
  url: string,
  token: string,
  body: unknown,
): Promise<{ id: string; delivered: number }> {
  const res = await fetch(`${url}/api/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; delivered: number };
}

/** The server's open stream count, from /healthz. */
export async function clientsOf(url: string): Promise<number> {
  return ((await (await fetch(`${url}/healthz`)).json()) as { clients: number }).clients;
}

/**
 * A client (a Python process) that opens a stream and never reads from it, with a small receive
 * buffer so that the server's socket fills soon. After a while it reads what is left; `closed`
 * resolves with how the stream ended: "ended after retry" (the response finished with a retry
 * hint), "closed" or "reset" (the server dropped the connection).
 */
export function stalledClient(url: string, path: string): { closed: Promise<string>; kill(): void } {
  const { hostname, port } = new URL(url);
  const script = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((${JSON.stringify(hostname)}, ${port}))
s.sendall(b"GET ${path} HTTP/1.1\\r\\nHost: x\\r\\nAccept: text/event-stream\\r\\n\\r\\n")
sys.stdout.write("connected\\n"); sys.stdout.flush()
time.sleep(float(sys.argv[1]))
# Then read what is left, to learn how the server ended it: the chunked body's last chunk
# (after a retry hint), the connection closed, or reset.
s.settimeout(5)
tail = b""
try:
    while True:
        data = s.recv(1 << 20)
        if not data:
            print("closed"); break
        tail = (tail + data)[-4096:]
        if tail.endswith(b"\\r\\n0\\r\\n\\r\\n"):
            print("ended after retry" if b"retry: " in tail else "ended"); break
except Exception as error:
    print("reset" if "reset" in str(error).lower() else "error: %s" % error)
`;
  const proc = Bun.spawn(["python3", "-c", script, "8"], { stdout: "pipe", stderr: "inherit" });
  const closed = new Response(proc.stdout).text().then((out) => out.trim().split("\n").at(-1) ?? "");
  return { closed, kill: () => proc.kill() };
}

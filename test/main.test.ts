import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const entry = join(import.meta.dir, "..", "src", "main.ts");

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream) {
    text += new TextDecoder().decode(chunk);
    if (text.includes("\n")) break;
  }
  return text.split("\n")[0]!;
}

describe("bun src/main.ts", () => {
  test("starts with embedded defaults, serves, and exits cleanly on SIGTERM", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-main-"));
    const proc = Bun.spawn([process.execPath, entry], {
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", HERALD_DATA_DIR: dataDir, HERALD_SECRET: "" },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const line = await firstLine(proc.stdout);
      const url = /listening on (http:\/\/\S+)/.exec(line)?.[1];
      expect(url).toBeDefined();
      const health = await (await fetch(`${url}/healthz`)).json();
      expect(health).toMatchObject({ status: "ok", clients: 0 });
      expect(await Bun.file(join(dataDir, "secret")).exists()).toBe(true);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    } finally {
      proc.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("a bad setting stops start-up with a message that names it", async () => {
    const proc = Bun.spawn([process.execPath, entry], {
      env: { ...process.env, PORT: "abc" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await proc.exited).toBe(1);
    expect(await new Response(proc.stderr).text()).toContain(
      'herald: PORT must be a whole number from 0 to 65535, got "abc"',
    );
  });
});

/**
 * A small tmpfs for disk-full tests: a real file system that runs out of space, mounted on a
 * temporary directory and unmounted afterwards. Mounting needs root (or CAP_SYS_ADMIN): where it
 * is refused the suites that need it are skipped with a loud message, except under `CI=true`,
 * where that fails the run.
 */
import { closeSync, mkdtempSync, openSync, rmSync, rmdirSync, statSync, truncateSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmpfs {
  dir: string;
  /** Writes a file that takes every free byte but `leaveBytes`, so that a larger write fails with ENOSPC. */
  fill(leaveBytes?: number): void;
  /** Removes what `fill` wrote. */
  free(): void;
  unmount(): void;
}

function run(cmd: string[]): { ok: boolean; text: string } {
  const out = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { ok: out.exitCode === 0, text: `${out.stdout.toString()}${out.stderr.toString()}`.trim() };
}

/** Mounts a tmpfs of `sizeBytes`, or returns `null` (after a loud warning) where mounting is not allowed. */
export function mountTmpfs(sizeBytes: number): Tmpfs | null {
  const dir = mkdtempSync(join(tmpdir(), "herald-tmpfs-"));
  const mounted = run(["mount", "-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", dir]);
  if (!mounted.ok) {
    rmdirSync(dir);
    const message = `disk-full tests SKIPPED: cannot mount a tmpfs here (${mounted.text || "mount failed"}). Run them as root, where mount -t tmpfs works.`;
    if (process.env.CI === "true") throw new Error(message);
    console.warn(`\n*** ${message}\n`);
    return null;
  }
  const filler = join(dir, "filler");
  return {
    dir,
    fill(leaveBytes = 0) {
      const fd = openSync(filler, "a");
      const chunk = new Uint8Array(64 * 1024);
      try {
        // Smaller and smaller writes, so that not even one page is left.
        for (let size = chunk.length; size >= 1; ) {
          try {
            writeSync(fd, chunk, 0, size);
          } catch {
            size = Math.floor(size / 2);
          }
        }
      } finally {
        closeSync(fd);
      }
      if (leaveBytes > 0) truncateSync(filler, Math.max(0, statSync(filler).size - leaveBytes));
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      run(["umount", "-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

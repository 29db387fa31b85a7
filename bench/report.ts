/**
 * What the bench prints and keeps: Markdown tables, the median round, and the machine it ran on.
 */
import { cpus, release } from "node:os";

/**
 * The median round by `score`: one lucky or unlucky round on a shared machine does not decide.
 * `spread` holds the lowest and highest score of the rounds.
 */
export function median<R>(runs: readonly R[], score: (run: R) => number): R & { spread: [number, number] } {
  const sorted = [...runs].sort((a, b) => score(a) - score(b));
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, spread: [score(sorted[0]!), score(sorted.at(-1)!)] };
}

/** A Markdown table, columns padded to their widest cell. */
/** The median of `values` (NaN when there are none). */
export function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/**
 * `items` in round `round`'s order: each round starts one further along, so that no server always
 * runs first, or always straight after the same other, in whatever state that leaves the machine.
 */
export function inTurn<T>(items: readonly T[], round: number): T[] {
  const start = round % items.length;
  return [...items.slice(start), ...items.slice(0, start)];
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: readonly string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** 123,456 */
export const count = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
/** 12.3 */
export const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : "n/a");
/** 95.2% */
export const percent = (ratio: number): string => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : "n/a");
/** 3.4× */
export const times = (ratio: number): string => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "n/a");
/** 110k–162k */
export const range = (spread: readonly [number, number] | undefined): string =>
  spread ? spread.map((n) => (n >= 10_000 ? `${Math.round(n / 1000)}k` : count(n))).join("–") : "";

export interface Machine {
  cpu: string;
  cores: number;
  bun: string;
  platform: string;
  kernel: string;
  /** Whether the servers ran on core 0 and the load client on core 1. */
  pinned: boolean;
  summary: string;
}

export function machine(pinned: boolean): Machine {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const cores = cpus().length;
  return {
    cpu,
    cores,
    bun: Bun.version,
    platform: process.platform,
    kernel: release(),
    pinned,
    summary: `${cores} × ${cpu}, Bun ${Bun.version}, ${process.platform}${pinned ? ", server on core 0, load client on core 1" : ""}`,
  };
}

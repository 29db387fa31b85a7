/**
 * The layers, read from the files themselves: `src/core/` (the hub library) imports nothing
 * outside itself, the server nothing from the demo shop or chat, and no file in `src/` or `views/`
 * imports, through any chain, itself. Type-only imports count: a circle of types is a circle
 * of design too.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Each file's imports of other project files, as paths relative to the repository. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of [...sources(join(ROOT, "src")), ...sources(join(ROOT, "views"))]) {
    const text = readFileSync(file, "utf8");
    const targets = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gms)].map((m) =>
      relative(ROOT, resolve(dirname(file), m[1]!)),
    );
    graph.set(relative(ROOT, file), targets);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe("the layers", () => {
  const graph = importGraph();

  test("src/core/ imports nothing outside itself", () => {
    const outside = [...graph].flatMap(([file, targets]) =>
      file.startsWith("src/core/")
        ? targets.filter((t) => !t.startsWith("src/core/")).map((t) => `${file} -> ${t}`)
        : [],
    );
    expect([...graph.keys()].some((file) => file.startsWith("src/core/"))).toBe(true);
    expect(outside).toEqual([]);
  });

  test("the server and the views import nothing from the demo shop or chat", () => {
    const wrong = [...graph].flatMap(([file, targets]) =>
      file.startsWith("src/server/") || file.startsWith("views/") || file === "src/index.ts"
        ? targets.filter((t) => t.startsWith("src/shop/") || t.startsWith("src/chat/")).map((t) => `${file} -> ${t}`)
        : [],
    );
    expect(wrong).toEqual([]);
  });

  test("views import no routes", () => {
    const wrong = [...graph].flatMap(([file, targets]) =>
      file.startsWith("views/") || file.includes("/views/")
        ? targets.filter((t) => t.includes("/routes")).map((t) => `${file} -> ${t}`)
        : [],
    );
    expect(wrong).toEqual([]);
  });

  test("no file imports itself through a chain of imports", () => {
    expect(cycles(graph).map((cycle) => cycle.join(" -> "))).toEqual([]);
  });

  test("the check sees a circle when there is one", () => {
    const circle = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
    ]);
    expect(cycles(circle)).toEqual([["a.ts", "b.ts", "c.ts", "a.ts"]]);
  });
});

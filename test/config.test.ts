import { describe, expect, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import { HeraldError } from "../src/errors.ts";

describe("configuration", () => {
  test("has working defaults with nothing set", () => {
    expect(loadConfig({})).toEqual({
      port: 3000,
      host: "0.0.0.0",
      heartbeatMs: 15_000,
      retryMs: 3_000,
      secret: undefined,
      dataDir: "./data",
      sessionTtlS: 604_800,
      maxTopicsPerStream: 32,
    });
  });

  test("reads every variable", () => {
    const config = loadConfig({
      PORT: "8080",
      HOST: "127.0.0.1",
      HERALD_HEARTBEAT_MS: "5000",
      HERALD_RETRY_MS: "1000",
      HERALD_SECRET: "0123456789abcdef0123",
      HERALD_DATA_DIR: "/var/lib/herald",
      HERALD_SESSION_TTL_S: "3600",
      HERALD_MAX_TOPICS: "8",
    });
    expect(config).toEqual({
      port: 8080,
      host: "127.0.0.1",
      heartbeatMs: 5000,
      retryMs: 1000,
      secret: "0123456789abcdef0123",
      dataDir: "/var/lib/herald",
      sessionTtlS: 3600,
      maxTopicsPerStream: 8,
    });
  });

  test("a value that does not parse stops start-up with a message naming the variable", () => {
    expect(() => loadConfig({ PORT: "http" })).toThrow('herald: PORT must be a whole number from 0 to 65535, got "http"');
    expect(() => loadConfig({ PORT: "70000" })).toThrow(HeraldError);
    expect(() => loadConfig({ HERALD_HEARTBEAT_MS: "1.5" })).toThrow("HERALD_HEARTBEAT_MS must be a whole number");
    expect(() => loadConfig({ HERALD_MAX_TOPICS: "0" })).toThrow("HERALD_MAX_TOPICS must be a whole number from 1 to 1000");
    expect(() => loadConfig({ HERALD_SECRET: "short" })).toThrow("HERALD_SECRET must be at least 16 characters");
  });

  test("an empty variable means its default", () => {
    expect(loadConfig({ PORT: "", HERALD_SECRET: " " })).toMatchObject({ port: 3000, secret: undefined });
  });
});

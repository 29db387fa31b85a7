import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { VARIABLES, variablesTable, withVariablesTable, type Variable } from "../src/server/variables.ts";
import { loadConfig } from "../src/server/config.ts";
import { HeraldError } from "../src/core/errors.ts";

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
      publishTokens: [],
      groups: {},
      anonymous: true,
      privateTopics: [],
      publicUrl: undefined,
      trustProxy: 0,
      tlsCert: undefined,
      tlsKey: undefined,
      corsOrigins: [],
      logLevel: "info",
      limits: {
        maxClients: 10_000,
        maxStreamsPerUser: 10,
        streamsPerIpPerS: 10,
        publishesPerUserPerS: 5,
        publishesPerTokenPerS: 500,
        maxBodyBytes: 262_144,
        maxHtmlBytes: 16_384,
        maxBatch: 100,
      },
      eventLog: "sqlite",
      redisUrl: undefined,
      redisPrefix: "herald:",
      workers: 1,
      presenceMs: 2_000,
      monitorMs: 2_000,
      logMaxEvents: 100_000,
      logMaxAgeS: 604_800,
      sqliteSync: "normal",
      maxBuffer: 1_048_576,
      clientTimeoutMs: 45_000,
      drainMs: 5_000,
      inboxSize: 50,
      redisTimeoutMs: 2_000,
      replayMaxAnonymous: 1_000,
      marketMs: 2_000,
      metricsMs: 3_000,
      orderStepMs: 3_000,
      demo: true,
      jwtSecret: undefined,
      jwtPublicKey: undefined,
      jwtCookie: "herald_jwt",
      jwtIssuer: undefined,
      jwtAudience: undefined,
      authUrl: undefined,
      authCacheS: 30,
      authTimeoutMs: 3_000,
      demoLogin: true,
      presenceTopics: [],
      htmx: 2,
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
      HERALD_PUBLISH_TOKENS: " token-one-0123456789 , token-two-0123456789",
      HERALD_GROUPS: "admins=Alice,bob; ops = carol ;admins=dave",
      HERALD_ANONYMOUS: "off",
      HERALD_PRIVATE_TOPICS: "private.*,audit",
      HERALD_PUBLIC_URL: "https://herald.example.com",
      HERALD_TRUST_PROXY: "on",
      HERALD_LOG: "warn",
      HERALD_MAX_CLIENTS: "500",
      HERALD_MAX_STREAMS_PER_USER: "3",
      HERALD_STREAMS_PER_IP_PER_S: "4",
      HERALD_PUBLISH_RATE_USER: "2",
      HERALD_PUBLISH_RATE_TOKEN: "50",
      HERALD_MAX_BODY_BYTES: "2048",
      HERALD_MAX_HTML_BYTES: "128",
      HERALD_MAX_BATCH: "7",
    });
    expect(config).toMatchObject({
      port: 8080,
      host: "127.0.0.1",
      heartbeatMs: 5000,
      retryMs: 1000,
      secret: "0123456789abcdef0123",
      dataDir: "/var/lib/herald",
      sessionTtlS: 3600,
      maxTopicsPerStream: 8,
      publishTokens: ["token-one-0123456789", "token-two-0123456789"],
      groups: { admins: ["alice", "bob", "dave"], ops: ["carol"] },
      anonymous: false,
      privateTopics: ["private.*", "audit"],
      trustProxy: 1,
      logLevel: "warn",
      limits: {
        maxClients: 500,
        maxStreamsPerUser: 3,
        streamsPerIpPerS: 4,
        publishesPerUserPerS: 2,
        publishesPerTokenPerS: 50,
        maxBodyBytes: 2048,
        maxHtmlBytes: 128,
        maxBatch: 7,
      },
    });
    expect(config.publicUrl?.origin).toBe("https://herald.example.com");
  });

  test("a value that does not parse stops start-up with a message naming the variable", () => {
    expect(() => loadConfig({ PORT: "http" })).toThrow(
      'herald: PORT must be a whole number from 0 to 65535, got "http"',
    );
    expect(() => loadConfig({ PORT: "70000" })).toThrow(HeraldError);
    expect(() => loadConfig({ HERALD_HEARTBEAT_MS: "1.5" })).toThrow("HERALD_HEARTBEAT_MS must be a whole number");
    expect(() => loadConfig({ HERALD_MAX_TOPICS: "0" })).toThrow(
      "HERALD_MAX_TOPICS must be a whole number from 1 to 1000",
    );
    expect(() => loadConfig({ HERALD_SECRET: "short" })).toThrow("HERALD_SECRET must be at least 16 characters");
    expect(() => loadConfig({ HERALD_PUBLISH_TOKENS: "short" })).toThrow(
      "HERALD_PUBLISH_TOKENS: every token must be at least 16 characters",
    );
    expect(() => loadConfig({ HERALD_GROUPS: "admins" })).toThrow('HERALD_GROUPS: "admins" is not group=user,user');
    expect(() => loadConfig({ HERALD_GROUPS: "admins=al ice" })).toThrow(
      'HERALD_GROUPS: "al ice" in group admins is not a user name',
    );
    expect(() => loadConfig({ HERALD_ANONYMOUS: "maybe" })).toThrow("HERALD_ANONYMOUS must be on or off");
    expect(() => loadConfig({ HERALD_PRIVATE_TOPICS: "a/b" })).toThrow(
      'HERALD_PRIVATE_TOPICS: "a/b" is not a topic pattern',
    );
    expect(() => loadConfig({ HERALD_PUBLIC_URL: "ftp://x" })).toThrow("HERALD_PUBLIC_URL must be an http(s) URL");
    expect(() => loadConfig({ HERALD_CORS_ORIGINS: "shop.example" })).toThrow(
      'HERALD_CORS_ORIGINS: "shop.example" is not an origin',
    );
    expect(loadConfig({ HERALD_CORS_ORIGINS: "https://a.example, http://localhost:4000/" }).corsOrigins).toEqual([
      "https://a.example",
      "http://localhost:4000",
    ]);
    expect(() => loadConfig({ HERALD_LOG: "loud" })).toThrow("HERALD_LOG must be one of debug, info, warn, error, off");
    expect(() => loadConfig({ HERALD_MAX_BODY_BYTES: "10" })).toThrow(
      "HERALD_MAX_BODY_BYTES must be a whole number from 1024",
    );
  });

  test("HERALD_TRUST_PROXY takes on, off or a number of proxies", () => {
    expect(loadConfig({}).trustProxy).toBe(0);
    expect(loadConfig({ HERALD_TRUST_PROXY: "on" }).trustProxy).toBe(1);
    expect(loadConfig({ HERALD_TRUST_PROXY: "off" }).trustProxy).toBe(0);
    expect(loadConfig({ HERALD_TRUST_PROXY: "2" }).trustProxy).toBe(2);
    expect(() => loadConfig({ HERALD_TRUST_PROXY: "first" })).toThrow(
      "HERALD_TRUST_PROXY must be on, off or a number of proxies",
    );
    expect(() => loadConfig({ HERALD_TRUST_PROXY: "17" })).toThrow(
      "HERALD_TRUST_PROXY must be a whole number from 0 to 16",
    );
  });

  test("numbers are decimal digits: hex, binary, exponents and fractions are refused", () => {
    for (const text of ["0x10", "0b11", "1e3", "1.0", "+5", "0o7"]) {
      expect(() => loadConfig({ HERALD_MAX_CLIENTS: text })).toThrow(
        `HERALD_MAX_CLIENTS must be a whole number from 1 to`,
      );
    }
    expect(loadConfig({ HERALD_MAX_CLIENTS: " 42 " }).limits.maxClients).toBe(42);
  });

  test("REDIS_URL makes Redis the event log unless another is asked for", () => {
    expect(loadConfig({ REDIS_URL: "redis://127.0.0.1:6379" })).toMatchObject({
      eventLog: "redis",
      redisUrl: "redis://127.0.0.1:6379",
    });
    expect(loadConfig({ REDIS_URL: "redis://127.0.0.1:6379", HERALD_EVENT_LOG: "sqlite" })).toMatchObject({
      eventLog: "sqlite",
    });
    expect(() => loadConfig({ HERALD_EVENT_LOG: "redis" })).toThrow("HERALD_EVENT_LOG=redis needs REDIS_URL");
    expect(() => loadConfig({ REDIS_URL: "localhost:6379" })).toThrow("REDIS_URL must be a redis:// URL");
    expect(() => loadConfig({ HERALD_WORKERS: "2" })).toThrow("HERALD_WORKERS above 1 needs REDIS_URL");
    expect(loadConfig({ HERALD_WORKERS: "4", REDIS_URL: "redis://127.0.0.1:6379" }).workers).toBe(4);
  });

  test("an empty variable means its default", () => {
    expect(loadConfig({ PORT: "", HERALD_SECRET: " ", HERALD_LOG: "" })).toMatchObject({
      port: 3000,
      secret: undefined,
      logLevel: "info",
    });
  });
});

describe("the variables table", () => {
  // Comment lines joined, so that a phrase wrapped over two lines still reads as one.
  const source = readFileSync(join(import.meta.dir, "..", "src", "server", "config.ts"), "utf8").replace(
    /\n\s*\* /g,
    " ",
  );

  test("docs/configuration.md shows the table as generated from it", () => {
    const docs = readFileSync(join(import.meta.dir, "..", "docs", "configuration.md"), "utf8");
    expect(docs).toContain(variablesTable());
    expect(withVariablesTable(docs)).toBe(docs);
  });

  test("every variable the loader reads is in the table, and every row is read", () => {
    const read = new Set([...source.matchAll(/(?:"|env\.)((?:HERALD_|REDIS_)[A-Z_]+|PORT|HOST)\b/g)].map((m) => m[1]!));
    expect([...read].filter((name) => !(name in VARIABLES))).toEqual([]);
    expect(Object.keys(VARIABLES).filter((name) => !read.has(name))).toEqual([]);
  });

  test("each option's TSDoc states the table's default", () => {
    const stated = [
      ...source.matchAll(/`((?:HERALD_|REDIS_)[A-Z_]+|PORT|HOST)`(?: \([^)]*\))?, defaults to `([^`]+)`/g),
    ].map((m) => [m[1]!, m[2]!] as const);
    expect(stated.length).toBeGreaterThan(30);
    for (const [name, shown] of stated) {
      const row = VARIABLES[name as keyof typeof VARIABLES] as Variable;
      expect({ name, shown }).toEqual({ name, shown: row.shown?.replaceAll("`", "") ?? String(row.default) });
    }
  });

  test("the defaults of loadConfig({}) are the table's", () => {
    const config = loadConfig({});
    expect(config.port).toBe(VARIABLES.PORT.default);
    expect(config.limits.maxClients).toBe(VARIABLES.HERALD_MAX_CLIENTS.default);
    expect(config.inboxSize).toBe(VARIABLES.HERALD_INBOX_SIZE.default);
    expect(config.dataDir).toBe(VARIABLES.HERALD_DATA_DIR.default);
  });
});

import { describe, expect, test } from "bun:test";
import { encodeComment, encodeMessage, encodeRetry, formatMessage } from "../src/core/sse.ts";
import { HeraldError } from "../src/core/errors.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("wire encoder", () => {
  test("writes event, id, retry and data fields in order, ending with a blank line", () => {
    expect(text(encodeMessage({ event: "notification", id: "42", retry: 1500, data: "hi" }))).toBe(
      "event: notification\nid: 42\nretry: 1500\ndata: hi\n\n",
    );
  });

  test("an unnamed message has only data", () => {
    expect(formatMessage({ data: "x" })).toBe("data: x\n\n");
  });

  test("splits a multi-line HTML fragment into one data line per line", () => {
    const fragment = '<li class="n">\n  <p>one</p>\n  <p>two</p>\n</li>';
    expect(formatMessage({ event: "notification", data: fragment })).toBe(
      'event: notification\ndata: <li class="n">\ndata:   <p>one</p>\ndata:   <p>two</p>\ndata: </li>\n\n',
    );
  });

  test("treats CR, LF and CRLF each as one line break", () => {
    expect(formatMessage({ data: "a\rb\nc\r\nd" })).toBe("data: a\ndata: b\ndata: c\ndata: d\n\n");
    expect(formatMessage({ data: "a\n\nb" })).toBe("data: a\ndata: \ndata: b\n\n");
    expect(formatMessage({ data: "a\r\n" })).toBe("data: a\ndata: \n\n");
  });

  test("encodes unicode as UTF-8", () => {
    const bytes = encodeMessage({ data: "Grüße 👋 日本" });
    expect(text(bytes)).toBe("data: Grüße 👋 日本\n\n");
    expect(bytes.byteLength).toBe(new TextEncoder().encode("data: Grüße 👋 日本\n\n").byteLength);
  });

  test("empty data is one empty data line, which the browser still dispatches", () => {
    expect(formatMessage({ event: "ping", data: "" })).toBe("event: ping\ndata: \n\n");
  });

  test("rejects an event name with a line break", () => {
    for (const event of ["a\nb", "a\rb", "a\r\nid: 1"]) {
      expect(() => encodeMessage({ event, data: "x" })).toThrow(HeraldError);
    }
    expect(() => encodeMessage({ event: "x\ndata: injected", data: "x" })).toThrow(
      "herald: an SSE event must not contain a line break",
    );
  });

  test("rejects an id with a line break or NUL", () => {
    expect(() => encodeMessage({ id: "1\n", data: "x" })).toThrow("herald: an SSE id must not contain a line break");
    expect(() => encodeMessage({ id: "1\r2", data: "x" })).toThrow(HeraldError);
    expect(() => encodeMessage({ id: "1\u00002", data: "x" })).toThrow("herald: an SSE id must not contain NUL");
  });

  test("rejects a retry that is not a whole number of milliseconds", () => {
    for (const retry of [-1, 1.5, Number.NaN, Infinity]) {
      expect(() => encodeMessage({ retry, data: "x" })).toThrow(HeraldError);
    }
    expect(() => encodeRetry(-5)).toThrow(HeraldError);
  });

  test("a retry hint alone is a frame without data", () => {
    expect(text(encodeRetry(3000))).toBe("retry: 3000\n\n");
  });

  test("comments prefix every line with a colon, so a line break cannot become a field", () => {
    expect(text(encodeComment("ping"))).toBe(": ping\n\n");
    expect(text(encodeComment("a\ndata: x"))).toBe(": a\n: data: x\n\n");
  });
});

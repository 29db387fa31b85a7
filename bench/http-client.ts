/**
 * A minimal HTTP/1.1 client for the publish benchmarks: one keep-alive connection, one request
 * at a time, the answer read by its Content-Length. `fetch` costs the load client more per
 * request than herald spends answering it (measured: herald's process about half idle while 32
 * fetch publishers ran flat out), so the publish rate measured through it was the client's.
 */
import type { Socket } from "bun";

const HEAD_END = Buffer.from("\r\n\r\n");

export class HttpConnection {
  readonly #socket: Socket<undefined>;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (answer: { status: number; body: string }) => void; reject: (error: Error) => void } | null =
    null;

  private constructor(socket: Socket<undefined>) {
    this.#socket = socket;
  }

  static async open(port: number, host = "127.0.0.1"): Promise<HttpConnection> {
    let connection!: HttpConnection;
    const socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_socket, chunk) => connection.#take(chunk),
        close: () => connection.#fail(new Error("the connection closed")),
        error: (_socket, error) => connection.#fail(error),
      },
    });
    connection = new HttpConnection(socket);
    return connection;
  }

  /** Sends one request (its whole bytes) and resolves with the answer's status and body. */
  request(bytes: Uint8Array): Promise<{ status: number; body: string }> {
    if (this.#waiting) throw new Error("one request at a time on a connection");
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.write(bytes);
    });
  }

  close(): void {
    this.#socket.end();
  }

  #fail(error: Error): void {
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.reject(error);
  }

  #take(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const end = this.#buffer.indexOf(HEAD_END);
    if (end < 0) return;
    const head = this.#buffer.subarray(0, end).toString("latin1");
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.#buffer.length < end + 4 + length) return;
    const body = this.#buffer.subarray(end + 4, end + 4 + length).toString();
    this.#buffer = this.#buffer.subarray(end + 4 + length);
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.resolve({ status: Number(head.slice(9, 12)), body });
  }
}

/** The bytes of a JSON POST to `path` with a bearer token. */
export function postJson(path: string, token: string, body: unknown): Uint8Array {
  const json = JSON.stringify(body);
  return Buffer.from(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  );
}

/**
 * Raw HTTP on a socket: for requests a fetch would refuse to send or would clean up first
 * (malformed request lines, Host headers, percent-encodings).
 */

/** What a raw request got back: the status, the head's headers (lower case) and the body. */
export interface RawAnswer {
  status: number;
  headers: Map<string, string>;
  body: string;
  bytes: number;
}

/** Sends `request` as it is on a new connection and reads until the server closes it. */
export async function rawRequest(port: number, request: string): Promise<RawAnswer> {
  let text = "";
  const { promise, resolve } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_socket, data) {
        text += new TextDecoder().decode(data);
      },
      close() {
        resolve();
      },
      error() {
        resolve();
      },
    },
  });
  socket.write(request);
  const timer = setTimeout(() => socket.end(), 3000);
  await promise;
  clearTimeout(timer);
  const [head = "", ...rest] = text.split("\r\n\r\n");
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers = new Map(
    lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]),
  );
  return { status: Number(statusLine.split(" ")[1]), headers, body: rest.join("\r\n\r\n"), bytes: text.length };
}

/**
 * The naive peer: an SSE server written the way most examples write one, on `node:http` with no
 * packages. Every open response sits in one array; a publish scans the whole array for the
 * topic's clients and builds each client's frame anew, splitting the fragment into `data:` lines
 * once per client. herald's figures are measured against this too: it shows what encoding once
 * and indexing subscribers by channel buy.
 *
 * It runs on Bun (which implements `node:http`), like herald and the floor, so that the comparison
 * is between designs on one runtime, not between runtimes.
 *
 * GET /sse?topic=<name> opens a stream; POST /publish with a JSON body
 * `{"topic": "...", "event": "...", "html": "..."}` sends `html` as one event to that topic's
 * streams and answers how many it was written to.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

interface Client {
  topic: string;
  res: ServerResponse;
}

interface Publication {
  topic: string;
  event: string;
  html: string;
}

const clients: Client[] = [];
let lastId = 0;

function parsePublication(text: string): Publication {
  const body: unknown = JSON.parse(text);
  const { topic, event, html } = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof topic !== "string" || typeof event !== "string" || typeof html !== "string") {
    throw new Error("naive: a publish needs topic, event and html strings");
  }
  return { topic, event, html };
}

function openStream(req: IncomingMessage, res: ServerResponse, topic: string): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.write("retry: 3000\n\n");
  const client = { topic, res };
  clients.push(client);
  req.on("close", () => clients.splice(clients.indexOf(client), 1));
}

function publish(req: IncomingMessage, res: ServerResponse): void {
  let text = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => (text += chunk));
  req.on("end", () => {
    let publication: Publication;
    try {
      publication = parsePublication(text);
    } catch (error) {
      res.writeHead(400).end(String(error));
      return;
    }
    const id = ++lastId;
    let sent = 0;
    for (const client of clients) {
      if (client.topic !== publication.topic) continue;
      client.res.write("event: " + publication.event + "\nid: " + id + "\ndata: " + publication.html.split("\n").join("\ndata: ") + "\n\n");
      sent++;
    }
    res.end(String(sent));
  });
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  if (req.method === "GET" && url.pathname === "/sse") openStream(req, res, url.searchParams.get("topic") ?? "");
  else if (req.method === "POST" && url.pathname === "/publish") publish(req, res);
  else res.writeHead(404).end();
});

// The same hook herald and the floor have: a full GC on request, so memory is measured without garbage.
process.on("SIGUSR2", () => Bun.gc(true));

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  console.log(`naive listening on http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`);
});

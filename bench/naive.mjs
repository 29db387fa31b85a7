/**
 * The naive peer: an SSE server written the way most examples write one, on Node's `http`
 * module with no packages, run by Node itself (`node bench/naive.mjs`; plain JavaScript, so Node
 * 20 runs it as it is). Every open response sits in one array; a publish scans the whole array for
 * the topic's clients and serializes the payload again for every one of them
 * (`JSON.stringify` per client, as the usual examples do). herald's figures are measured against
 * this: it shows what encoding once and indexing subscribers by channel buy.
 *
 * GET /sse?topic=<name> opens a stream; POST /publish with a JSON body
 * `{"topic": "...", "event": "...", "html": "..."}` (or a list of them) sends each event to its
 * topic's streams and answers how many writes that made.
 */
import { createServer } from "node:http";

/** @type {Array<{ topic: string, res: import("node:http").ServerResponse }>} */
const clients = [];
let lastId = 0;

function openStream(req, res, topic) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.write("retry: 3000\n\n");
  const client = { topic, res };
  clients.push(client);
  req.on("close", () => clients.splice(clients.indexOf(client), 1));
}

function publish(req, res) {
  let text = "";
  req.setEncoding("utf8");
  req.on("data", (chunk) => (text += chunk));
  req.on("end", () => {
    let publications;
    try {
      const body = JSON.parse(text);
      publications = Array.isArray(body) ? body : [body];
      for (const p of publications) {
        if (typeof p?.topic !== "string" || typeof p.event !== "string" || typeof p.html !== "string")
          throw new Error("a publish needs topic, event and html strings");
      }
    } catch (error) {
      res.writeHead(400).end(String(error));
      return;
    }
    let sent = 0;
    for (const publication of publications) {
      const id = ++lastId;
      for (const client of clients) {
        if (client.topic !== publication.topic) continue;
        const payload = { id, event: publication.event, html: publication.html, at: Date.now() };
        client.res.write(`event: ${publication.event}\nid: ${id}\ndata: ${JSON.stringify(payload)}\n\n`);
        sent++;
      }
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

// The same hook herald and the floor have: a full GC on request, so memory is measured without
// garbage (Node exposes gc() with --expose-gc; without it, memory is read as it is).
process.on("SIGUSR2", () => globalThis.gc?.());

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  console.log(`naive listening on http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`);
});

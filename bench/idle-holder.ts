/**
 * Holds idle streams for the isolation scenario in a process of its own, so that the measuring
 * client's event loop and collector do not carry them (their cost there would pass for the
 * server's). Usage: `bun bench/idle-holder.ts PORT TOPICS PER_TOPIC PATH_PREFIX`, which opens
 * PER_TOPIC streams on each of the topics `idle-0` … on `PATH_PREFIX<topic>`, prints
 * `{"ready": n, "failed": n}` on stdout, and closes them and exits when its stdin ends.
 */
import { connectTopics } from "./load.ts";

const [port, topicCount, perTopic] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])];
const prefix = process.argv[5] ?? "/sse?topic=";
const topics = Array.from({ length: topicCount }, (_, i) => `idle-${i}`);
const clients = await connectTopics(port, (topic) => `${prefix}${topic}`, topics, perTopic);
console.log(
  JSON.stringify({
    ready: clients.reduce((sum, client) => sum + client.open, 0),
    failed: clients.reduce((sum, client) => sum + client.failed, 0),
  }),
);
for await (const _ of Bun.stdin.stream());
for (const client of clients) client.close();
process.exit(0);

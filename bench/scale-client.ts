/**
 * One load-client process for `bench/scale.ts`: holds COUNT streams on PATH at HOST (a process
 * may hold only so many sockets, and one address pair only about 28,000), and reports to its parent as JSON lines on
 * stdout. The parent writes
 * "measure <events>" on stdin when the publishing starts; this process says when every stream has
 * each event (`{"got": n}`), and reports every event's receive times once each stream has them
 * all, or when the parent writes "report". Its streams stay open until the parent ends it: a client
 * that closed its streams as soon as it had every event would make the servers close thousands of
 * streams while other clients' streams still wait for the last broadcast, and that broadcast's
 * fan-out and CPU would count the closing.
 */
import { LoadClient } from "./load.ts";

const [port, count, host, path] = [
  Number(process.argv[2]),
  Number(process.argv[3]),
  process.argv[4] ?? "127.0.0.1",
  process.argv[5] ?? "/sse?topic=scale",
];
const receipts: number[][] = [];
const client = new LoadClient({
  port,
  host,
  path,
  onDelivery: (n, at) => {
    const times = (receipts[n - 1] ??= []);
    times.push(at);
    // Every stream has broadcast n: the parent publishes the next one only then.
    if (times.length === client.open) console.log(JSON.stringify({ got: n }));
  },
});
await client.connect(count, 500);
console.log(JSON.stringify({ ready: client.open, failed: client.failed }));

let events = 0;
let reported = false;
// The process stays until its parent ends it, so that the parent can read its CPU time after the report.
const report = () => {
  if (reported) return;
  reported = true;
  console.log(JSON.stringify({ done: true, delivered: client.delivered, behind: client.behind(events), receipts }));
};
for await (const line of console) {
  const [command, value] = line.trim().split(" ");
  if (command === "measure") {
    events = Number(value);
    client.expect(events);
    console.log(JSON.stringify({ armed: true }));
    void (async () => {
      while (client.behind(events) > 0) await Bun.sleep(20);
      report();
    })();
  } else if (command === "report") report();
}

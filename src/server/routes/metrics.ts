/**
 * `GET /metrics`: this process's figures in the Prometheus text format (version 0.0.4).
 */
import type { AppContext } from "../context.ts";

type Sample = [labels: Record<string, string>, value: number];

function family(
  name: string,
  type: "gauge" | "counter" | "histogram",
  help: string,
  samples: Sample[],
  suffix = "",
): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const [labels, value] of samples) {
    const text = Object.entries(labels)
      .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
      .join(",");
    lines.push(`${name}${suffix}${text ? `{${text}}` : ""} ${Number.isFinite(value) ? value : 0}`);
  }
  return lines.join("\n");
}

/** The exposition, one family a block. */
export function metrics(ctx: AppContext): Response {
  const stats = ctx.hub.stats();
  const { publishSeconds: h } = stats;
  const histogram = [
    `# HELP herald_publish_duration_seconds Time from a publish to its fan-out, the event log's commit included.`,
    `# TYPE herald_publish_duration_seconds histogram`,
    ...h.buckets.map(([bound, count]) => `herald_publish_duration_seconds_bucket{le="${bound}"} ${count}`),
    `herald_publish_duration_seconds_bucket{le="+Inf"} ${h.count}`,
    `herald_publish_duration_seconds_sum ${h.sum}`,
    `herald_publish_duration_seconds_count ${h.count}`,
  ].join("\n");
  const body = [
    family("herald_streams_open", "gauge", "Open event streams.", [[{}, stats.clients]]),
    family(
      "herald_channel_subscriptions",
      "gauge",
      "Open streams on channels of each kind (a stream counts once per channel it is on).",
      Object.entries(stats.byKind).map(([kind, n]) => [{ kind }, n] as Sample),
    ),
    family("herald_events_published_total", "counter", "Events published.", [[{}, stats.published]]),
    family("herald_events_delivered_total", "counter", "Events written to streams (one per stream per event).", [
      [{}, stats.delivered],
    ]),
    family("herald_events_replayed_total", "counter", "Events written to resuming streams from the event log.", [
      [{}, stats.replayed],
    ]),
    family("herald_bytes_written_total", "counter", "Bytes written to streams, heartbeats included.", [
      [{}, stats.bytesWritten],
    ]),
    family(
      "herald_streams_dropped_total",
      "counter",
      "Streams herald ended because they could not keep up (slow) or stopped draining (stale).",
      [
        [{ reason: "slow" }, stats.droppedSlow],
        [{ reason: "stale" }, stats.droppedStale],
      ],
    ),
    histogram,
  ].join("\n\n");
  return new Response(body + "\n", { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
}

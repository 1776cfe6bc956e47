// Load generator for docs/benchmarks.md: opens N WebSocket clients, subscribes them to one symbol,
// and reports updates delivered per second, latency (tick `ts` -> receipt), per-client counts, seq gaps,
// closes, and its own CPU time as one JSON object on stdout. Cheap per frame: one JSON.parse, no allocation
// per update beyond it. Usage: node loadgen.mjs --url ws://127.0.0.1:8000/ws?batch=1 --clients 100 ...
// --dialect full (default: `type` tags the messages; --subprotocol trio-ticker.v1 selects it at trio_ticker) or
// prototype (plain /ws: every frame is one price object, subscribed with the stock streamer's {"symbol": X} form).
// With --stalled K: a baseline window (--baseline seconds) without them, then K clients subscribe and stop
// reading (ws.pause()) and the measured window starts; their local ports and pause times are reported so the
// server's log can say when each was closed (a paused socket cannot see its own close).
// With --storm K: once the readers stream, K more clients open within --storm-spread seconds (a reconnect storm,
// as after a restart) and subscribe at once; the measured window starts with the storm and the report says how long
// each storm client took to open and to get its subscription acknowledged. Latency is measured on the readers.
// With --churn N: no readers; --churn-rounds rounds of N connect / subscribe / leave cycles (--concurrency at a
// time; every other client leaves with a close handshake, the others drop the socket), --churn-pause seconds apart,
// each marked on stderr so the runner can watch the server's file descriptors and memory in between.
import { parseArgs } from "node:util";
import WebSocket from "ws";

import { ResumeClients } from "./resume_clients.mjs";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string" },
    clients: { type: "string", default: "10" },
    stalled: { type: "string", default: "0" }, // extra clients that subscribe, then never read again
    baseline: { type: "string", default: "0" }, // seconds measured before the stalled clients connect
    symbol: { type: "string", default: "BTCUSDT" },
    warmup: { type: "string", default: "2" }, // seconds after all subscribed, before measuring
    duration: { type: "string", default: "5" }, // measured seconds
    concurrency: { type: "string", default: "50" }, // connection attempts in flight
    "connect-timeout": { type: "string", default: "120" }, // seconds for all clients to subscribe
    hold: { type: "boolean", default: false }, // after the report, keep every client until stdin closes (60 s max)
    deflate: { type: "boolean", default: false }, // offer permessage-deflate, as browsers do
    storm: { type: "string", default: "0" }, // clients that open together once the readers stream
    "storm-spread": { type: "string", default: "0.5" }, // seconds over which the storm clients open
    "storm-deadline": { type: "string", default: "5" }, // seconds: the report counts storm clients open by then
    churn: { type: "string", default: "0" }, // connect / subscribe / leave cycles per round
    "churn-rounds": { type: "string", default: "3" },
    "churn-pause": { type: "string", default: "5" }, // seconds between rounds (and after the last one)
    dialect: { type: "string", default: "full" }, // "full" or "prototype"
    subprotocol: { type: "string" }, // offered in the handshake (the full protocol's trio-ticker.v1)
    resume: { type: "string", default: "0" }, // more clients, unmeasured, that drop and reconnect with recovery
    "resume-every": { type: "string", default: "0" }, // seconds between their drops in the window (0: never drop)
    "resume-gap": { type: "string", default: "2" }, // seconds they stay away each time
    "resume-plain": { type: "boolean", default: false }, // they reconnect without `since` (a snapshot each)
  },
});
if (!opts.url) {
  console.error("usage: node loadgen.mjs --url WS_URL [--clients N] [--stalled K] [--duration S] ...");
  process.exit(2);
}
const clientCount = Number(opts.clients);
const stalledCount = Number(opts.stalled);
const warmupMs = Number(opts.warmup) * 1000;
const durationMs = Number(opts.duration) * 1000;
const baselineMs = Number(opts.baseline) * 1000;
const concurrency = Number(opts.concurrency);
const connectTimeoutMs = Number(opts["connect-timeout"]) * 1000;
const stormCount = Number(opts.storm);
const stormSpreadMs = Number(opts["storm-spread"]) * 1000;
const stormDeadlineMs = Number(opts["storm-deadline"]) * 1000;
const resumeCount = Number(opts.resume);
const resumeEveryMs = Number(opts["resume-every"]) * 1000;
const resumeGapMs = Number(opts["resume-gap"]) * 1000;
if (!["full", "prototype"].includes(opts.dialect)) {
  console.error(`unknown --dialect ${opts.dialect}: full or prototype`);
  process.exit(2);
}
const prototype = opts.dialect === "prototype";
const subscribeFrame = JSON.stringify(
  prototype ? { action: "subscribe", symbol: opts.symbol } : { action: "subscribe", symbols: [opts.symbol] },
);
// A tick: the full protocol tags it; in the prototypes' dialect everything but an error object is a price object.
const isTick = prototype ? (message) => message.ticker !== undefined : (message) => message.type === "tick";
const protocols = opts.subprotocol ? [opts.subprotocol] : [];

const HISTOGRAM_MS = 120_000; // 1 ms buckets; anything later lands in the last one

const SLICE_MS = 5000;

// One measured window: latency histograms (whole, each half to show growth, each 5 s), frames and updates.
class Window {
  constructor(durationMs) {
    this.histogram = new Uint32Array(HISTOGRAM_MS + 1);
    this.halves = [new Uint32Array(HISTOGRAM_MS + 1), new Uint32Array(HISTOGRAM_MS + 1)];
    this.slices = Array.from({ length: Math.ceil(durationMs / SLICE_MS) + 1 }, () => new Uint32Array(HISTOGRAM_MS + 1));
    this.start = Date.now();
    this.mid = this.start + durationMs / 2;
    this.frames = 0;
    this.updates = 0;
  }

  record(latency, now) {
    this.histogram[latency]++;
    this.halves[now < this.mid ? 0 : 1][latency]++;
    this.slices[Math.min(Math.floor((now - this.start) / SLICE_MS), this.slices.length - 1)][latency]++;
    this.updates++;
  }

  latencySummary() {
    return {
      p50: percentile(this.histogram, 0.5),
      p90: percentile(this.histogram, 0.9),
      p99: percentile(this.histogram, 0.99),
      max: maximum(this.histogram),
      p99_first_half: percentile(this.halves[0], 0.99),
      p99_second_half: percentile(this.halves[1], 0.99),
      p99_each_5s: trimNulls(this.slices.map((slice) => percentile(slice, 0.99))),
    };
  }
}

let measured = null; // the window being measured, if any
let perClient = false; // per-client counts and gaps are kept for the main window only
const closes = {}; // close code -> count
const errors = {};

class Client {
  constructor(index, stalled, storm = false) {
    this.index = index;
    this.stalled = stalled;
    this.storm = storm; // opened in the storm: timed, not part of the latency histograms
    this.startedAt = null; // epoch ms of the connection attempt, and of its open and subscription ack
    this.openedAt = null;
    this.subscribedAt = null;
    this.updates = 0; // in the window
    this.missed = 0; // seq gaps in the window
    this.lastSeq = -1;
    this.subscribed = false;
    this.closed = false;
    this.pausedAt = null; // epoch ms when a stalled client stopped reading
    this.localPort = null;
  }

  connect() {
    return new Promise((resolve) => {
      this.startedAt = Date.now();
      const ws = new WebSocket(opts.url, protocols, { perMessageDeflate: opts.deflate });
      this.ws = ws;
      let settled = false;
      const settle = (ok) => {
        if (!settled) {
          settled = true;
          resolve(ok);
        }
      };
      ws.on("open", () => {
        this.openedAt = Date.now();
        this.localPort = ws._socket.localPort; // names this client in the server's log
        settle(true);
      });
      ws.on("message", (data) => {
        if (!this.subscribed && this.onSubscribed && !data.includes('"type":"welcome"')) {
          this.subscribed = true;
          this.subscribedAt = Date.now();
          this.onSubscribed();
          if (this.stalled) {
            ws.pause(); // never read again: kernel buffers fill, pings go unanswered
            this.pausedAt = Date.now();
            return;
          }
        }
        this.onFrame(data);
      });
      ws.on("close", (code) => {
        this.closed = true;
        closes[code] = (closes[code] || 0) + 1;
        settle(false);
      });
      ws.on("error", (error) => {
        errors[error.code || error.message] = (errors[error.code || error.message] || 0) + 1;
        settle(false);
      });
    });
  }

  // Clients connect first and subscribe together afterwards: a loaded server accepts slowly.
  subscribe() {
    return new Promise((resolve) => {
      this.onSubscribed = resolve;
      this.ws.send(subscribeFrame);
    });
  }

  onFrame(data) {
    if (this.storm) return; // timed by its open and its ack; its ticks are not measured
    const message = JSON.parse(data);
    if (Array.isArray(message)) {
      for (const item of message) this.onMessage(item);
      if (measured) measured.frames++;
    } else {
      this.onMessage(message);
      if (measured && isTick(message)) measured.frames++;
    }
  }

  onMessage(message) {
    if (!isTick(message)) return;
    const seq = message.seq;
    if (measured) {
      const now = Date.now();
      measured.record(Math.min(Math.max(now - message.ts, 0), HISTOGRAM_MS), now);
    }
    if (perClient) {
      this.updates++;
      if (this.lastSeq >= 0 && seq > this.lastSeq + 1) this.missed += seq - this.lastSeq - 1;
    }
    if (seq > this.lastSeq) this.lastSeq = seq;
  }
}

function percentile(counts, fraction) {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  if (total === 0) return null;
  const rank = Math.ceil(total * fraction);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i];
    if (seen >= rank) return i;
  }
  return counts.length - 1;
}

function trimNulls(values) {
  while (values.length && values.at(-1) === null) values.pop();
  return values;
}

function maximum(counts) {
  for (let i = counts.length - 1; i >= 0; i--) if (counts[i]) return i;
  return null;
}

function quantile(sorted, fraction) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] : null;
}

function highestSeq(clients) {
  return clients.reduce((highest, client) => Math.max(highest, client.lastSeq), 0);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function connectAll(clients) {
  let next = 0;
  const worker = async () => {
    while (next < clients.length) await clients[next++].connect();
  };
  const workers = Array.from({ length: Math.min(concurrency, clients.length) }, worker);
  const timedOut = sleep(connectTimeoutMs).then(() => "timeout");
  return Promise.race([Promise.all(workers), timedOut]);
}

// The storm: every client starts its connection at its slot within the spread, and subscribes as soon as it opens.
async function openStorm(clients) {
  const started = Date.now();
  const attempts = clients.map(async (client, i) => {
    const due = started + (stormSpreadMs * i) / clients.length;
    if (due > Date.now()) await sleep(due - Date.now());
    if (await client.connect()) await client.subscribe();
  });
  return { started, done: Promise.all(attempts) };
}

function millisecondsSummary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? null };
}

function stormReport(clients, started) {
  const opened = clients.filter((client) => client.openedAt !== null);
  const subscribed = clients.filter((client) => client.subscribedAt !== null);
  return {
    clients: clients.length,
    spread_seconds: stormSpreadMs / 1000,
    opened: opened.length,
    subscribed: subscribed.length,
    deadline_seconds: stormDeadlineMs / 1000,
    // From the storm's start, not from each client's slot: "every client connects within 5 s of the storm"
    opened_within_deadline: opened.filter((client) => client.openedAt - started <= stormDeadlineMs).length,
    subscribed_within_deadline: subscribed.filter((client) => client.subscribedAt - started <= stormDeadlineMs).length,
    all_opened_seconds: opened.length === clients.length ? (Math.max(...opened.map((c) => c.openedAt)) - started) / 1000 : null,
    // When each connection attempt really began (its slot was within the spread): the load generator's own lag
    started_ms: millisecondsSummary(clients.filter((c) => c.startedAt !== null).map((c) => c.startedAt - started)),
    open_ms: millisecondsSummary(opened.map((client) => client.openedAt - client.startedAt)),
    subscribe_ms: millisecondsSummary(subscribed.map((client) => client.subscribedAt - client.startedAt)),
  };
}

// One churn cycle: open, subscribe, and leave once acknowledged: a close handshake (a tab closed) or, for every
// other client, the socket dropped without one (a network blip, a killed browser).
function churnCycle(index) {
  return new Promise((resolve) => {
    const ws = new WebSocket(opts.url, protocols, { perMessageDeflate: opts.deflate });
    let settled = false;
    const settle = (ok) => {
      if (!settled) {
        settled = true;
        resolve(ok);
      }
    };
    ws.on("open", () => ws.send(subscribeFrame));
    ws.once("message", () => {
      if (index % 2 === 0) {
        ws.close(1000); // done once the server's close frame is back
      } else {
        ws.terminate();
        settle(true);
      }
    });
    ws.on("close", (code) => settle(code === 1000));
    ws.on("error", (error) => {
      errors[error.code || error.message] = (errors[error.code || error.message] || 0) + 1;
      settle(false);
    });
  });
}

async function churn(cycles, rounds, pauseMs) {
  const report = [];
  for (let round = 1; round <= rounds; round++) {
    const started = Date.now();
    console.error(`loadgen: event=churn_round_start round=${round}`);
    let next = 0;
    let completed = 0;
    const worker = async () => {
      while (next < cycles) if (await churnCycle(next++)) completed++;
    };
    await Promise.race([Promise.all(Array.from({ length: Math.min(concurrency, cycles) }, worker)), sleep(connectTimeoutMs)]);
    const ended = Date.now();
    console.error(`loadgen: event=churn_round_end round=${round}`);
    report.push({ round, started_ms: started, ended_ms: ended, seconds: (ended - started) / 1000, completed });
    await sleep(pauseMs);
  }
  const cpu = process.cpuUsage();
  process.stdout.write(
    JSON.stringify({ churn: { cycles, rounds: report }, errors, loadgen_cpu_total_seconds: (cpu.user + cpu.system) / 1e6 }) + "\n",
  );
  process.exit(0);
}

// The recovering clients drop together every --resume-every seconds of the window, and come back after the gap.
async function cycleResumers(resumers, endsAt) {
  while (Date.now() + resumeEveryMs <= endsAt) {
    await sleep(resumeEveryMs - resumeGapMs);
    await resumers.cycle(resumeGapMs);
  }
}

async function main() {
  if (Number(opts.churn) > 0) return churn(Number(opts.churn), Number(opts["churn-rounds"]), Number(opts["churn-pause"]) * 1000);
  const startCpu = process.cpuUsage();
  const connectStart = Date.now();
  const readers = Array.from({ length: clientCount }, (_, i) => new Client(i, false));
  const stalled = Array.from({ length: stalledCount }, (_, i) => new Client(clientCount + i, true));
  const storm = Array.from({ length: stormCount }, (_, i) => new Client(clientCount + stalledCount + i, false, true));
  const outcome = await connectAll(readers);
  const resumers = resumeCount
    ? new ResumeClients(resumeCount, opts.url, protocols, opts.symbol, !opts["resume-plain"], opts.deflate)
    : null;
  await resumers?.openAll(concurrency);
  const open = readers.filter((client) => client.ws?.readyState === WebSocket.OPEN);
  await Promise.race([Promise.all(open.map((client) => client.subscribe())), sleep(connectTimeoutMs)]);
  const connectSeconds = (Date.now() - connectStart) / 1000;
  const subscribed = readers.filter((client) => client.subscribed).length;
  console.error(`loadgen: event=subscribed clients=${subscribed}/${clientCount} seconds=${connectSeconds.toFixed(1)}`);

  await sleep(warmupMs);
  let baseline = null;
  if (stalled.length && baselineMs > 0) {
    measured = new Window(baselineMs);
    await sleep(baselineMs);
    baseline = {
      window_seconds: (Date.now() - measured.start) / 1000,
      updates_per_second: measured.updates / ((Date.now() - measured.start) / 1000),
      latency_ms: measured.latencySummary(),
    };
    measured = null;
  }
  if (stalled.length) {
    await connectAll(stalled);
    await Promise.race([Promise.all(stalled.map((client) => client.subscribe())), sleep(connectTimeoutMs)]);
  }
  const windowCpu = process.cpuUsage();
  console.error("loadgen: event=window_start");
  const seqAtStart = highestSeq(readers);
  const window = new Window(durationMs);
  measured = window;
  perClient = true;
  const stormStart = storm.length ? await openStorm(storm) : null;
  const resumeCycles = resumers && resumeEveryMs > 0 ? cycleResumers(resumers, Date.now() + durationMs) : null;
  await sleep(durationMs);
  measured = null;
  await resumeCycles;
  perClient = false;
  const elapsed = (Date.now() - window.start) / 1000;
  const cpu = process.cpuUsage(windowCpu);
  const seqAtEnd = highestSeq(readers);
  console.error("loadgen: event=window_end");

  const counts = readers.map((client) => client.updates).sort((a, b) => a - b);
  const withGaps = readers.filter((client) => client.missed > 0);
  const report = {
    clients: clientCount,
    subscribed,
    connect_seconds: connectSeconds,
    connect_outcome: outcome === "timeout" ? "timeout" : "ok",
    window_seconds: elapsed,
    frames: window.frames,
    updates: window.updates,
    ticks_per_second: (seqAtEnd - seqAtStart) / elapsed, // what the feed produced, as far as any client saw
    updates_per_second: window.updates / elapsed,
    frames_per_second: window.frames / elapsed,
    latency_ms: window.latencySummary(),
    baseline, // the readers alone, just before the stalled clients connected (null without them)
    per_client_updates: { min: counts[0] ?? null, p50: quantile(counts, 0.5), max: counts.at(-1) ?? null },
    clients_with_gaps: withGaps.length,
    missed_updates: withGaps.reduce((sum, client) => sum + client.missed, 0),
    clients_without_updates: counts.filter((count) => count === 0).length,
    closed_during_run: readers.filter((client) => client.closed).length,
    stalled: stalledCount,
    stalled_clients: stalled.map((client) => ({ port: client.localPort ?? null, paused_at_ms: client.pausedAt })),
    storm: stormStart ? stormReport(storm, stormStart.started) : null,
    resume: resumers?.report() ?? null,
    closes,
    errors,
    loadgen_cpu_seconds: (cpu.user + cpu.system) / 1e6,
    loadgen_cpu_total_seconds: (() => {
      const total = process.cpuUsage(startCpu);
      return (total.user + total.system) / 1e6;
    })(),
  };
  process.stdout.write(JSON.stringify(report) + "\n");
  if (opts.hold) {
    // The runner reads the server's statistics at window_end, while every client is still connected.
    const stdinClosed = new Promise((resolve) => process.stdin.on("end", resolve).on("error", resolve).resume());
    await Promise.race([stdinClosed, sleep(60_000)]);
  }
  for (const client of [...readers, ...stalled, ...storm]) client.ws?.terminate(); // unstarted after a connect timeout
  resumers?.closeAll();
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

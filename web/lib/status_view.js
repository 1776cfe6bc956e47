// One status model for the banner and the source chips: from the page's connection and the sources' last
// reported states to what the dot, the banner text and every chip show, so they can never disagree.

const SOURCE_WORDS = {
  connecting: "connecting",
  live: "live",
  degraded: "degraded (some prices missing)",
  rate_limited: "rate limited (waiting)",
  reconnecting: "reconnecting",
  unauthorized: "unauthorized (check the API key)",
  stopped: "stopped",
  unknown: "unknown",
};

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  offline: "Offline: waiting for the network",
  unauthorized: "Not authorized: this server needs a token. Open the page as /#token=YOUR_TOKEN",
};

/** A source state in words (an unknown word is shown as it came). */
export function sourceWords(state) {
  return SOURCE_WORDS[state] ?? state;
}

/** The banner while not live: a countdown to the next attempt, or what the page is doing. */
export function connectionText({ state, retryAt = null }, now) {
  if (state === "reconnecting") {
    if (retryAt === null) return "Reconnecting…";
    return `Reconnecting in ${Math.max(0, Math.ceil((retryAt - now) / 1000))} s`;
  }
  return CONNECTION_TEXT[state] ?? "Live";
}

/**
 * `connection` is TickerConnection's latest `{state, retryAt}`; `sources` maps each source to its last reported
 * state, or null when this connection has not learnt it yet. Returns `{dot, text, chips: [{source, state,
 * text}]}`. Only a live page knows its sources: otherwise every chip says "unknown". A live page with a source
 * that is not live shows an amber dot ("degraded") and names the source in the banner.
 */
export function statusView(connection, sources, now = Date.now()) {
  const live = connection.state === "live";
  const chips = [...sources].map(([source, reported]) => {
    const state = live && reported ? reported : "unknown";
    return { source, state, text: `${source} feed: ${sourceWords(state)}` };
  });
  if (!live) return { dot: connection.state, text: connectionText(connection, now), chips };
  const troubled = chips.filter((chip) => chip.state !== "live" && chip.state !== "unknown");
  if (troubled.length === 0) return { dot: "live", text: "Live", chips };
  const text = troubled.length === 1 ? `Live · ${troubled[0].text}` : `Live · ${troubled.length} feeds not live`;
  return { dot: "degraded", text, chips };
}

// Server frames to messages: with `?batch=1` every frame is a JSON array; a plain object is accepted too.

/** The versioned subprotocol of the full protocol (without it, `/ws` speaks the prototypes' dialect). */
export const FULL_PROTOCOL = "trio-ticker.v1";

/** Returns `{messages, error}`; a frame that is not JSON (or holds non-objects) never throws. */
export function parseFrame(text) {
  let decoded;
  try {
    decoded = JSON.parse(text);
  } catch {
    return { messages: [], error: "frame is not valid JSON" };
  }
  const items = Array.isArray(decoded) ? decoded : [decoded];
  const messages = items.filter((item) => item !== null && typeof item === "object" && typeof item.type === "string");
  const error = messages.length === items.length ? null : "frame holds items that are not messages";
  return { messages, error };
}

/** The WebSocket URL on the page's own host: `wss:` when the page is https. */
export function socketUrl(location, path = "/ws?batch=1") {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// The access token of a server that requires one (TICKER_AUTH_TOKENS). It is given once in the page's
// fragment (`/#token=…`), which browsers never send to a server or put in its logs, and kept for the tab.

import { FULL_PROTOCOL } from "./frames.js";

export const TOKEN_KEY = "trio_ticker.token";

/** The token from the fragment `#token=…` (saved to `storage`), else the one this tab saved before; null if none. */
export function readToken(hash, storage) {
  const given = new URLSearchParams(hash.replace(/^#/, "")).get("token");
  if (given) {
    storage.setItem(TOKEN_KEY, given);
    return given;
  }
  return storage.getItem(TOKEN_KEY);
}

/** The fragment without its `token` parameter, so the address bar (and a shared link) no longer shows it. */
export function hashWithoutToken(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  params.delete("token");
  const rest = params.toString();
  return rest ? `#${rest}` : "";
}

/** The subprotocols for `new WebSocket(url, protocols)`: the full protocol, and the token as `bearer.<token>`. */
export function socketProtocols(token) {
  return token ? [FULL_PROTOCOL, `bearer.${token}`] : [FULL_PROTOCOL];
}

/** Headers for the token-protected REST routes (`/symbols`, `/price`, `/prices`, `/metrics`). */
export function authHeaders(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

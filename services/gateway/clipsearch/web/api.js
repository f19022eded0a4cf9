// The one way the page talks to the gateway: fetch with the API key (if any) as X-API-Key,
// errors in the API's shape turned into ApiError(code, message, status).
const KEY = "clipsearch.api_key";
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
  toString() {
    return `${this.code}: ${this.message}`;
  }
}

export const getKey = () => sessionStorage.getItem(KEY) || "";
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}
/** Called with the ApiError on every 401, so the page can ask for a key. */
export const onUnauthorized = (fn) => listeners.add(fn);

function headers(extra = {}) {
  const out = { ...extra };
  const key = getKey();
  if (key) out["X-API-Key"] = key;
  return out;
}

async function toError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON: a proxy's page */
  }
  const e = body && body.error;
  const err = e
    ? new ApiError(res.status, e.code, e.message, e.details)
    : new ApiError(res.status, `http_${res.status}`, res.statusText || "request failed");
  if (res.status === 401) listeners.forEach((fn) => fn(err));
  return err;
}

/** fetch + JSON; body: an object (sent as JSON) or FormData. Throws ApiError. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", `the gateway did not answer (${err.message})`);
  }
  if (!res.ok) throw await toError(res);
  return res.status === 204 ? null : res.json();
}

/** A path with query parameters (empty ones left out). */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}${path.includes("?") ? "&" : "?"}${s}` : path;
}

// Images: <img src> cannot send a header, so with a key the bytes are fetched and shown from
// a blob: URL (the CSP allows img-src blob:); without one the browser loads them itself.
export function loadImage(img, url) {
  if (!getKey()) {
    img.src = url;
    return;
  }
  fetch(url, { headers: headers() })
    .then((res) => (res.ok ? res.blob() : Promise.reject(new Error(res.status))))
    .then((blob) => {
      img.src = URL.createObjectURL(blob);
      img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
    })
    .catch(() => img.classList.add("broken"));
}

/** Server-sent events over fetch (EventSource cannot send the key header): calls
 * onEvent(name, data) per event until the stream ends or signal aborts. */
export async function streamEvents(path, onEvent, signal) {
  const res = await fetch(path, { headers: headers({ accept: "text/event-stream" }), signal });
  if (!res.ok) throw await toError(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let name = "";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line === "") {
        if (data.length) onEvent(name || "message", JSON.parse(data.join("\n")));
        name = "";
        data = [];
      } else if (!line.startsWith(":")) {
        const i = line.indexOf(":");
        const fieldName = i < 0 ? line : line.slice(0, i);
        const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
        if (fieldName === "event") name = val;
        else if (fieldName === "data") data.push(val);
      }
    }
  }
}

/** Collection names: GET /v1/collections when the gateway has it, else /v1/stats. */
export async function collectionNames() {
  try {
    const body = await api("/v1/collections");
    const list = Array.isArray(body) ? body : body.collections || body.items || [];
    return list.map((c) => (typeof c === "string" ? c : c.name)).filter(Boolean);
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 405)) throw err;
  }
  const stats = await api("/v1/stats");
  return Object.keys(stats.collections || {});
}

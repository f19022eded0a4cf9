// Hash routes: #/<page>[/<arg>][?<params>]. Back, reload and shared links replay the route.
let renderer = () => {};

/** The function that draws the current route (set once by app.js). */
export const setRenderer = (fn) => (renderer = fn);

/** The route in the address bar: {page, arg, params}. */
export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const cut = raw.indexOf("?");
  const path = cut < 0 ? raw : raw.slice(0, cut);
  const [page, ...rest] = path.split("/");
  return {
    page: page || "search",
    arg: decodeURIComponent(rest.join("/")),
    params: new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1)),
  };
}

/** The hash of a route (for links). */
export function href(page, params, arg = "") {
  const q = params ? new URLSearchParams(params).toString() : "";
  return `#/${page}${arg ? "/" + encodeURIComponent(arg) : ""}${q ? "?" + q : ""}`;
}

/** Go to a route (a new history entry, or replace the current one). */
export function navigate(page, params, { replace = false, arg = "" } = {}) {
  const hash = href(page, params, arg);
  if (hash === location.hash) renderer();
  else if (replace) {
    history.replaceState(null, "", hash);
    renderer();
  } else location.hash = hash; // hashchange draws it
}

// The single-page app: hash routes (#/search?..., #/library, #/image/<id>, #/ingest,
// #/stats), the API key box, and one view rendered into <main> per route.
import { getKey, onUnauthorized, setKey } from "./api.js";
import { setStatus } from "./dom.js";
import { parseHash, setRenderer } from "./router.js";
import { renderSearch } from "./search.js";
import { renderLibrary, renderImage } from "./library.js";
import { renderIngest } from "./ingest.js";
import { renderStats } from "./stats.js";

const $ = (id) => document.getElementById(id);
const routes = {
  search: renderSearch,
  library: renderLibrary,
  image: renderImage,
  ingest: renderIngest,
  stats: renderStats,
};
let current = null; // { abort } of the view on screen

function render() {
  if (current) current.abort();
  current = new AbortController();
  const route = parseHash();
  const page = routes[route.page] ? route.page : "search";
  const active = document.activeElement;
  const focused = active && active.id;
  const wasInView = active && $("view").contains(active);
  for (const link of document.querySelectorAll("nav a")) {
    const on = link.dataset.page === page || (page === "image" && link.dataset.page === "library");
    if (on) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const view = $("view");
  view.replaceChildren();
  routes[page](view, { arg: route.arg, params: route.params, signal: current.signal });
  // A view drawn again after a submit keeps the keyboard where it was (e.g. the query box).
  const again = focused && document.getElementById(focused);
  if (again && view.contains(again)) again.focus();
  else if (wasInView) view.focus(); // e.g. after "Similar" or a page link: start at the new view
}
setRenderer(render);

function showKeyForm(message) {
  $("key-form").hidden = false;
  $("key-show").hidden = true;
  if (message) setStatus($("key-status"), message, "error");
  $("api-key").focus();
}

onUnauthorized((err) => showKeyForm(`${err.code}: ${err.message} — enter an API key.`));
$("key-show").addEventListener("click", () => showKeyForm());
$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  setKey($("api-key").value.trim());
  $("api-key").value = "";
  setStatus($("key-status"), getKey() ? "Key saved for this browser tab." : "");
  render();
});
$("key-clear").addEventListener("click", () => {
  setKey("");
  setStatus($("key-status"), "Key forgotten.");
  render();
});

// The old page's shared links (/?q=...&target=...&collection=...) open the same search here.
if (location.search && !location.hash) history.replaceState(null, "", "/#/search" + location.search);

window.addEventListener("hashchange", render);
render();

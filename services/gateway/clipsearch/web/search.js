// Search page: text, an uploaded picture, or a stored picture ("similar"); the search is in
// the address bar (#/search?q=...&target=&top_k=&offset=&min_score=&filter=&collection=).
import { api, withQuery } from "./api.js";
import { field, h, parseJsonObject, setStatus, short } from "./dom.js";
import { navigate } from "./router.js";
import { collectionSelect, dropZone, pictureCard } from "./widgets.js";

let uploaded = null; // the picture last searched by upload (files cannot live in the URL)

export function renderSearch(view, { params, signal }) {
  const p = (name, fallback = "") => params.get(name) ?? fallback;
  const q = h("input", {
    id: "q",
    type: "search",
    name: "q",
    value: p("q"),
    autocomplete: "off",
    placeholder: "e.g. a red circle",
  });
  const texts = h("input", { id: "target-texts", type: "checkbox", checked: p("target") === "texts" });
  const topK = h("input", { id: "top-k", type: "number", min: 1, max: 100, value: p("top_k", "12") });
  const minScore = h("input", { id: "min-score", type: "number", min: -1, max: 1, step: "0.01", value: p("min_score") });
  const filter = h("textarea", { id: "filter", rows: 2, value: p("filter"), placeholder: '{"album": "holidays"}' });
  const collection = collectionSelect("collection", p("collection"));
  const file = h("input", { id: "query-image", type: "file", accept: "image/*" });
  const status = h("p.status", { id: "search-status", role: "status" });
  const grid = h("ul.grid", { id: "results", "aria-label": "results" });
  const pager = h("div.pager");

  const options = () => {
    const out = new URLSearchParams();
    if (texts.checked) out.set("target", "texts");
    if (topK.value && topK.value !== "12") out.set("top_k", topK.value);
    if (minScore.value) out.set("min_score", minScore.value);
    if (filter.value.trim()) out.set("filter", filter.value.trim());
    if (collection.value) out.set("collection", collection.value);
    return out;
  };
  const validate = () => parseJsonObject(filter.value, "filter");

  const form = h(
    "form.search",
    {
      onsubmit: (ev) => {
        ev.preventDefault();
        try {
          validate();
        } catch (err) {
          return setStatus(status, err.message, "error");
        }
        if (!q.value.trim()) return setStatus(status, "Type what to look for, or pick a picture.", "error");
        const next = options();
        next.set("q", q.value.trim());
        navigate("search", next);
      },
    },
    h("div.row", {}, field("Describe a picture", q), h("button", { type: "submit", text: "Search" })),
    dropZone(file, "Or drop a picture here, or pick one:", (files) => {
      try {
        validate();
      } catch (err) {
        return setStatus(status, err.message, "error");
      }
      uploaded = files[0];
      const next = options();
      next.set("upload", "1");
      navigate("search", next, { replace: Boolean(params.get("upload")) });
    }),
    h(
      "div.row",
      {},
      h("div.check", {}, texts, h("label", { for: "target-texts", text: "find texts (captions) instead of pictures" })),
    ),
    h(
      "details.options",
      { open: Boolean(p("min_score") || p("filter") || p("collection")) },
      h("summary", { text: "Options" }),
      h(
        "div.row",
        {},
        field("Results per page", topK),
        field("Minimum score", minScore, "cosine, -1 to 1"),
        field("Collection", collection),
      ),
      field("Filter (JSON)", filter, 'metadata filter, e.g. {"year": {"$gte": 2020}}'),
    ),
  );
  view.append(h("h1", { text: "Search" }), form, status, grid, pager);

  let mode = null;
  if (params.get("q")) mode = "text";
  else if (params.get("image_id")) mode = "image_id";
  else if (params.get("upload") && uploaded) mode = "upload";
  if (!mode) {
    if (params.get("upload")) setStatus(status, "The picture you searched by is not kept across reloads: pick it again.");
    return;
  }
  runSearch(mode, params, { status, grid, pager, signal });
}

async function runSearch(mode, params, { status, grid, pager, signal }) {
  const target = params.get("target") === "texts" ? "texts" : "images";
  const topK = Number(params.get("top_k") || 12);
  const offset = Number(params.get("offset") || 0);
  const collection = params.get("collection") || "";
  const opts = { target, top_k: topK, offset };
  if (params.get("min_score")) opts.min_score = Number(params.get("min_score"));
  try {
    const filter = parseJsonObject(params.get("filter"), "filter");
    if (filter) opts.filter = filter;
  } catch (err) {
    return setStatus(status, err.message, "error");
  }
  const path = (p) => withQuery(p, { collection });
  let request;
  let what;
  if (mode === "text") {
    request = api(path("/v1/search/text"), { method: "POST", body: { query: params.get("q"), ...opts }, signal });
    what = `“${params.get("q")}”`;
  } else if (mode === "image_id") {
    request = api(path("/v1/search/image"), { method: "POST", body: { image_id: params.get("image_id"), ...opts }, signal });
    what = `pictures like ${short(params.get("image_id"))}`;
  } else {
    const body = new FormData();
    body.append("file", uploaded);
    for (const [k, v] of Object.entries(opts)) body.append(k, typeof v === "object" ? JSON.stringify(v) : String(v));
    request = api(path("/v1/search/image"), { method: "POST", body, signal });
    what = `the picture ${uploaded.name}`;
  }
  setStatus(status, `Searching for ${what}…`, "busy");
  grid.setAttribute("aria-busy", "true");
  let data;
  try {
    data = await request;
  } catch (err) {
    if (err.name === "AbortError") return;
    grid.removeAttribute("aria-busy");
    return setStatus(status, String(err), "error");
  }
  grid.removeAttribute("aria-busy");
  const n = data.hits.length;
  const range = n ? `${offset + 1}–${offset + n}` : "no";
  setStatus(status, `${range} ${target === "texts" ? "texts" : "pictures"} for ${what} in ${data.took_ms.toFixed(1)} ms`);
  for (const hit of data.hits) grid.append(hitCard(hit, target, collection));
  const page = (delta) => {
    const next = new URLSearchParams(params);
    next.set("offset", String(Math.max(0, offset + delta)));
    if (next.get("offset") === "0") next.delete("offset");
    navigate("search", next);
  };
  if (offset > 0) pager.append(h("button", { type: "button", text: "← Previous", onclick: () => page(-topK) }));
  if (n === topK) pager.append(h("button", { type: "button", text: "Next →", onclick: () => page(topK) }));
}

function hitCard(hit, target, collection) {
  const imageId = target === "texts" ? hit.image_id : hit.id;
  const similar = () => {
    const next = new URLSearchParams();
    if (collection) next.set("collection", collection);
    next.set("image_id", imageId);
    navigate("search", next);
  };
  const lines = [
    target === "texts" ? hit.text : hit.caption || "(no caption)",
    `score ${hit.score.toFixed(3)}`,
    hit.source && hit.source !== hit.text ? hit.source : null,
  ];
  const actions = imageId ? [h("button", { type: "button", text: "Similar", onclick: similar })] : [];
  const card = pictureCard(imageId, collection, lines, actions);
  card.dataset.id = hit.id;
  return card;
}

// Plain JS against the public API: POST /v1/search/text and /v1/search/image.
const $ = (id) => document.getElementById(id);
const collection = new URLSearchParams(location.search).get("collection");
const qs = collection ? "?collection=" + encodeURIComponent(collection) : "";

function show(data, target) {
  const box = $("results");
  box.replaceChildren();
  $("status").textContent = `${data.hits.length} hits in ${data.took_ms.toFixed(1)} ms`;
  $("status").className = "";
  for (const hit of data.hits) {
    const card = document.createElement("div");
    card.className = "hit";
    if (hit.thumbnail_url) {
      const link = document.createElement("a");
      link.href = hit.image_url;
      link.target = "_blank";
      const img = document.createElement("img");
      img.src = hit.thumbnail_url;
      img.alt = hit.caption || hit.text || hit.id;
      link.append(img);
      card.append(link);
    }
    const label = document.createElement("div");
    label.textContent = (target === "texts" ? hit.text : hit.caption || hit.source) || hit.id.slice(0, 12);
    const score = document.createElement("div");
    score.className = "score";
    score.textContent = "score " + hit.score.toFixed(3);
    card.append(label, score);
    box.append(card);
  }
}

async function run(url, init, target) {
  $("status").textContent = "searching…";
  try {
    const res = await fetch(url + qs, init);
    const data = await res.json();
    if (!res.ok) throw new Error(data.error ? `${data.error.code}: ${data.error.message}` : res.status);
    show(data, target);
  } catch (err) {
    $("results").replaceChildren();
    $("status").textContent = String(err.message || err);
    $("status").className = "error";
  }
}

$("text-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const target = $("target").value;
  run("/v1/search/text", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: $("query").value, target, top_k: Number($("top_k").value) }),
  }, target);
});

$("image-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const target = $("target").value;
  const body = new FormData();
  body.append("file", $("file").files[0]);
  body.append("target", target);
  body.append("top_k", $("top_k").value);
  run("/v1/search/image", { method: "POST", body }, target);
});

// A search can be shared as a link: /?q=a+red+circle[&target=texts][&collection=...]
const params = new URLSearchParams(location.search);
if (params.get("q")) {
  $("query").value = params.get("q");
  if (params.get("target")) $("target").value = params.get("target");
  $("text-form").requestSubmit();
}

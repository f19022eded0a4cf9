// Stats: readiness (/readyz) and GET /v1/stats: collections (counts, index, model and
// fingerprint), the encoder and store with their health, search/ingest latency.
import { api } from "./api.js";
import { h, setStatus } from "./dom.js";

const fmt = (v) => {
  if (v === null || v === undefined) return "—";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
};
const row = ([k, v]) => h("tr", {}, h("th", { scope: "row", text: k }), h("td", { text: fmt(v) }));
const table = (caption, rows) => h("table", {}, h("caption", { text: caption }), h("tbody", {}, ...rows.map(row)));

export function renderStats(view, { signal }) {
  const status = h("p.status", { id: "stats-status", role: "status" });
  const ready = h("p.status", { id: "ready" });
  const body = h("div.stats", { id: "stats" });
  const refresh = h("button", { type: "button", text: "Refresh", onclick: () => load() });
  view.append(h("h1", { text: "Stats" }), h("div.row", {}, refresh), ready, status, body);

  const load = async () => {
    setStatus(status, "Loading…", "busy");
    fetch("/readyz", { signal })
      .then((r) => r.json().then((j) => [r.ok, j]))
      .then(([ok, j]) => {
        if (ok) setStatus(ready, "Ready: encoder and store answer.", "ok");
        else setStatus(ready, `Not ready: ${j.error ? j.error.message : "?"}`, "error");
      })
      .catch((err) => err.name !== "AbortError" && setStatus(ready, "Not ready: the gateway did not answer.", "error"));
    try {
      const s = await api("/v1/stats", { signal });
      setStatus(status, "");
      const e = s.encoder;
      const parts = [
        table("Encoder", [
          ["mode", e.mode],
          ["model", e.model_name],
          ["fingerprint", e.fingerprint],
          ["dimensions", e.dim],
          ["health", e.health],
        ]),
        table("Store", [
          ["kind", s.store.kind],
          ["uri", s.store.uri],
          ["health", s.store.health],
          ["file bytes", s.blobs.bytes],
          ["uptime (s)", s.uptime_s],
        ]),
      ];
      for (const [kind, w] of Object.entries(s.latency || {})) parts.push(table(`Latency: ${kind} (ms)`, Object.entries(w || {})));
      for (const [name, c] of Object.entries(s.collections || {})) {
        parts.push(
          table(`Collection ${name}`, [
            ...Object.entries(c.counts || {}),
            ["index", `${c.index_type} ${fmt(c.index_params)}`],
            ["dimensions", c.dim],
            ["model", c.model_name],
            ["fingerprint", c.fingerprint],
          ]),
        );
      }
      if (!Object.keys(s.collections || {}).length) parts.push(h("p", { text: "No collections yet." }));
      body.replaceChildren(...parts);
    } catch (err) {
      if (err.name !== "AbortError") setStatus(status, String(err), "error");
    }
  };
  load();
}

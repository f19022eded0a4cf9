// Ingest: files (picked, dropped, or a whole folder), URLs, a captions file -> POST
// /v1/ingest; each job's progress bar follows GET /v1/jobs/<id>/events, then its failed items.
import { api, streamEvents, withQuery } from "./api.js";
import { field, h, setStatus, short } from "./dom.js";
import { collectionSelect, dropZone } from "./widgets.js";

const IMAGE = /\.(jpe?g|png|gif|webp|bmp|tiff?)$/i;

export function renderIngest(view, { signal }) {
  let chosen = [];
  const files = h("input", { id: "ingest-files", type: "file", multiple: true, accept: "image/*" });
  const folder = h("input", { id: "ingest-folder", type: "file", multiple: true, webkitdirectory: true });
  const urls = h("textarea", { id: "ingest-urls", rows: 3, placeholder: "https://example.org/a.jpg" });
  const captions = h("input", { id: "ingest-captions", type: "file", accept: ".csv,.token,.txt" });
  const collection = collectionSelect("ingest-collection", "");
  const status = h("p.status", { id: "ingest-status", role: "status" });
  const picked = h("p.meta", { id: "ingest-picked", text: "No files chosen." });
  const jobs = h("ul.jobs", { id: "jobs", "aria-label": "jobs" });
  const choose = (list) => {
    chosen = [...list].filter((f) => IMAGE.test(f.name) || f.type.startsWith("image/"));
    picked.textContent = chosen.length ? `${chosen.length} picture(s) chosen` : "No pictures among those files.";
  };
  folder.addEventListener("change", () => choose(folder.files));
  const form = h(
    "form.ingest",
    {
      onsubmit: async (ev) => {
        ev.preventDefault();
        const body = new FormData();
        for (const f of chosen) body.append("files", f, f.name);
        if (urls.value.trim()) body.append("urls", urls.value);
        if (captions.files[0]) body.append("captions_file", captions.files[0]);
        if (collection.value) body.append("collection", collection.value);
        if (!chosen.length && !urls.value.trim()) return setStatus(status, "Choose pictures or paste URLs first.", "error");
        setStatus(status, "Uploading…", "busy");
        try {
          const job = await api("/v1/ingest", { method: "POST", body });
          setStatus(status, `Job ${short(job.job_id)} started (${job.total} items).`);
          jobs.prepend(followJob(job, signal));
          chosen = [];
          form.reset();
          picked.textContent = "No files chosen.";
        } catch (err) {
          setStatus(status, String(err), "error");
        }
      },
    },
    dropZone(files, "Drop pictures here, or pick them:", choose),
    field("Or a whole folder", folder),
    picked,
    field("Image URLs, one per line", urls),
    field("Captions file (optional)", captions, "captions.csv with image_path,caption columns, or a Flickr .token file"),
    field("Collection", collection),
    h("button", { type: "submit", text: "Start ingest" }),
  );
  view.append(h("h1", { text: "Ingest" }), form, status, h("h2", { text: "Recent jobs" }), jobs);
  // The jobs so far (newest first): running ones are followed live, finished ones shown.
  api("/v1/jobs?limit=10", { signal })
    .then((list) => {
      for (const j of list.jobs) if (!jobs.querySelector(`[data-job="${j.job_id}"]`)) jobs.append(followJob(j, signal));
    })
    .catch((err) => err.name !== "AbortError" && setStatus(status, String(err), "error"));
}

const FINAL = new Set(["done", "partial", "failed", "cancelled"]);

/** A job's line: a progress bar fed by the job's events, then its failed items. */
function followJob(job, signal) {
  const total = job.counts ? job.counts.total : job.total;
  const bar = h("progress", { max: Math.max(total, 1), value: 0, "aria-label": `job ${short(job.job_id)} progress` });
  const line = h("p.meta", { text: "queued" });
  const failures = h("ul.failures");
  const cancel = h("button", {
    type: "button",
    text: "Cancel",
    onclick: () =>
      api(`/v1/jobs/${encodeURIComponent(job.job_id)}`, { method: "DELETE" })
        .catch((err) => (line.textContent = String(err))),
  });
  const title = h("strong", { text: `Job ${short(job.job_id)}` });
  const item = h("li.job", { "data-job": job.job_id, "data-status": job.status }, title, bar, line, cancel, failures);
  const show = (j) => {
    const c = j.counts;
    const done = c.total - c.pending;
    bar.max = Math.max(c.total, 1);
    bar.value = done;
    const eta = j.eta_s != null && j.status === "running" ? `, about ${Math.ceil(j.eta_s)} s left` : "";
    const parts = `stored ${c.stored}, updated ${c.updated}, duplicate ${c.duplicate}, failed ${c.failed}`;
    line.textContent = `${j.status}: ${done}/${c.total} (${parts})${eta}`;
    item.dataset.status = j.status;
    cancel.hidden = FINAL.has(j.status);
  };
  const finish = async (j) => {
    show(j);
    if (!j.counts.failed) return;
    try {
      const full = await api(withQuery(`/v1/jobs/${encodeURIComponent(j.job_id)}`, { item_status: "failed", limit: 100 }));
      failures.replaceChildren(
        h("li", { text: `${j.counts.failed} failed:` }),
        ...full.items.map((it) => h("li.error", { text: `${it.source}: ${it.error || "failed"}` })),
      );
    } catch (err) {
      failures.replaceChildren(h("li.error", { text: String(err) }));
    }
  };
  if (job.counts && FINAL.has(job.status)) {
    finish(job);
    return item;
  }
  streamEvents(
    `/v1/jobs/${encodeURIComponent(job.job_id)}/events`,
    (name, data) => {
      if (name === "progress") show(data);
      else if (name === "end") finish(data);
      else if (name === "expired") line.textContent = "The event stream timed out: reload the page to see the job.";
    },
    signal,
  ).catch((err) => err.name !== "AbortError" && line.replaceChildren(h("span.error", { text: String(err) })));
  return item;
}

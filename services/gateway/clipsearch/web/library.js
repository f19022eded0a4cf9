// Library: browse a collection page by page (GET /v1/images, its cursor), and one picture's
// page (#/image/<id>): captions, metadata, similar pictures, edit (PATCH), delete.
import { api, loadImage, withQuery } from "./api.js";
import { field, h, parseJsonObject, setStatus, short } from "./dom.js";
import { href, navigate } from "./router.js";
import { collectionSelect, pictureCard } from "./widgets.js";

const PAGE = 24;

export function renderLibrary(view, { params, signal }) {
  const collection = collectionSelect("lib-collection", params.get("collection") || "");
  const filter = h("textarea", {
    id: "lib-filter",
    rows: 2,
    value: params.get("filter") || "",
    placeholder: '{"album": "holidays"}',
  });
  const status = h("p.status", { id: "lib-status", role: "status" });
  const grid = h("ul.grid", { id: "library", "aria-label": "pictures" });
  const more = h("button", { type: "button", id: "lib-more", text: "Load more", hidden: true });
  const form = h(
    "form.search",
    {
      onsubmit: (ev) => {
        ev.preventDefault();
        try {
          parseJsonObject(filter.value, "filter");
        } catch (err) {
          return setStatus(status, err.message, "error");
        }
        const next = new URLSearchParams();
        if (collection.value) next.set("collection", collection.value);
        if (filter.value.trim()) next.set("filter", filter.value.trim());
        navigate("library", next);
      },
    },
    h("div.row", {}, field("Filter (JSON)", filter), field("Collection", collection), h("button", { type: "submit", text: "Show" })),
  );
  view.append(h("h1", { text: "Library" }), form, status, grid, h("div.pager", {}, more));

  const coll = params.get("collection") || "";
  let cursor = null;
  let shown = 0;
  const load = async () => {
    more.disabled = true;
    setStatus(status, "Loading…", "busy");
    try {
      const query = { collection: coll, filter: params.get("filter"), limit: PAGE, cursor };
      const page = await api(withQuery("/v1/images", query), { signal });
      for (const img of page.items) {
        const card = pictureCard(img.id, coll, [img.caption || "(no caption)", img.source]);
        card.dataset.id = img.id;
        grid.append(card);
      }
      shown += page.items.length;
      cursor = page.next_cursor;
      const total = page.total ?? "?";
      const none = params.get("filter") ? "No pictures match the filter." : "No pictures here yet: add some on the Ingest page.";
      setStatus(status, shown ? `${shown} of ${total} pictures` : none);
      more.hidden = !cursor;
      more.disabled = false;
    } catch (err) {
      if (err.name !== "AbortError") setStatus(status, String(err), "error");
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  load();
}

export function renderImage(view, { arg: id, params, signal }) {
  const coll = params.get("collection") || "";
  const path = (suffix = "") => withQuery(`/v1/images/${encodeURIComponent(id)}${suffix}`, { collection: coll });
  const status = h("p.status", { id: "image-status", role: "status" });
  const back = h("a", { href: href("library", coll ? { collection: coll } : undefined), text: "← Library" });
  view.append(back, h("h1", { text: `Picture ${short(id)}` }), status);
  setStatus(status, "Loading…", "busy");
  api(path(), { signal })
    .then((img) => {
      setStatus(status, "");
      view.append(details(img, path, status, coll), similar(id, path, coll, signal));
    })
    .catch((err) => err.name !== "AbortError" && setStatus(status, String(err), "error"));
}

function details(img, path, status, coll) {
  const picture = h("img.full", { alt: img.caption || `picture ${short(img.id)}` });
  loadImage(picture, img.thumbnail_url);
  const caption = h("input", { id: "edit-caption", type: "text", value: img.caption || "" });
  const metadata = h("textarea", { id: "edit-metadata", rows: 5, value: JSON.stringify(img.metadata || {}, null, 2) });
  const extra = h("input", { id: "add-caption", type: "text", value: "" });
  const apply = async (patch) => {
    setStatus(status, "Saving…", "busy");
    try {
      const updated = await api(path(), { method: "PATCH", body: patch });
      Object.assign(img, updated);
      captions.replaceChildren(...captionItems(updated, remove));
      extra.value = "";
      setStatus(status, "Saved.");
    } catch (err) {
      setStatus(status, String(err), "error");
    }
  };
  const remove = (text) => apply({ remove_captions: [text] });
  const save = async (ev) => {
    ev.preventDefault();
    const patch = {};
    try {
      const meta = parseJsonObject(metadata.value, "metadata") || {};
      if (JSON.stringify(meta) !== JSON.stringify(img.metadata || {})) {
        patch.metadata = meta;
        patch.metadata_mode = "replace";
      }
    } catch (err) {
      return setStatus(status, err.message, "error");
    }
    if (caption.value.trim() !== (img.caption || "")) patch.caption = caption.value.trim();
    if (extra.value.trim()) patch.add_captions = [extra.value.trim()];
    if (!Object.keys(patch).length) return setStatus(status, "Nothing changed.");
    await apply(patch);
  };
  const captions = h("ul.captions", { id: "captions" }, ...captionItems(img, remove));
  const facts = h(
    "dl.facts",
    {},
    ...[
      ["id", img.id],
      ["source", img.source],
      ["size", img.width ? `${img.width}×${img.height} ${img.content_type}` : img.content_type],
      ["added", img.created_at ? new Date(img.created_at * 1000).toLocaleString() : ""],
    ].flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v || "—" })]),
  );
  const confirmBox = h("div.confirm", { hidden: true });
  const askDelete = () => {
    confirmBox.hidden = false;
    confirmBox.replaceChildren(
      h("p", { text: "Delete this picture, its captions and its file? This cannot be undone." }),
      h("button.danger", { type: "button", id: "confirm-delete", text: "Yes, delete", onclick: doDelete }),
      h("button", { type: "button", text: "Cancel", onclick: () => (confirmBox.hidden = true) }),
    );
    confirmBox.querySelector("#confirm-delete").focus();
  };
  const doDelete = async () => {
    setStatus(status, "Deleting…", "busy");
    try {
      await api(path(), { method: "DELETE" });
      navigate("library", coll ? new URLSearchParams({ collection: coll }) : undefined);
    } catch (err) {
      setStatus(status, String(err), "error");
    }
  };
  return h(
    "section.detail",
    {},
    h("div.picture", {}, picture),
    h(
      "div.info",
      {},
      facts,
      h("h2", { text: "Captions" }),
      captions,
      h(
        "form.edit",
        { onsubmit: save },
        h("h2", { text: "Edit" }),
        field("Main caption", caption),
        field("Another caption (optional)", extra),
        field("Metadata (JSON object, replaces the stored one)", metadata),
        h(
          "div.actions",
          {},
          h("button", { type: "submit", text: "Save" }),
          h("button.danger", { type: "button", id: "delete", text: "Delete…", onclick: askDelete }),
        ),
        confirmBox,
      ),
    ),
  );
}

/** The captions, main first; each other one with a Remove button. */
function captionItems(img, remove) {
  const list = img.captions && img.captions.length ? img.captions : img.caption ? [img.caption] : [];
  if (!list.length) return [h("li", { text: "(none)" })];
  return list.map((c, i) =>
    h(
      "li",
      {},
      h("span", { text: c }),
      i === 0
        ? h("small.hint", { text: " (main)" })
        : h("button.small", { type: "button", text: "Remove", "aria-label": `Remove caption: ${c}`, onclick: () => remove(c) }),
    ),
  );
}

function similar(id, path, coll, signal) {
  const grid = h("ul.grid", { id: "similar", "aria-label": "similar pictures" });
  const status = h("p.status", { role: "status", text: "Loading similar pictures…" });
  api(withQuery(path("/similar"), { top_k: 8 }), { signal })
    .then((data) => {
      setStatus(status, data.hits.length ? "" : "No similar pictures.");
      for (const hit of data.hits) {
        grid.append(pictureCard(hit.id, coll, [hit.caption || "(no caption)", `score ${hit.score.toFixed(3)}`]));
      }
    })
    .catch((err) => err.name !== "AbortError" && setStatus(status, String(err), "error"));
  const query = { ...(coll ? { collection: coll } : {}), image_id: id };
  const more = h("a", { href: href("search", query), text: "Search for more like this →" });
  return h("section", {}, h("h2", { text: "Similar pictures" }), status, grid, h("p", {}, more));
}

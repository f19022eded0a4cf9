// Pieces several pages share: the collection picker, a picture card, a drop zone.
import { collectionNames, loadImage } from "./api.js";
import { h, short } from "./dom.js";
import { href } from "./router.js";

/** <select> of collections ("" = the gateway's default), filled from the API. */
export function collectionSelect(id, current) {
  const select = h("select", { id, name: "collection" }, h("option", { value: "", text: "(the gateway's default)" }));
  const add = (name) => select.append(h("option", { value: name, text: name }));
  if (current) add(current);
  select.value = current || "";
  collectionNames()
    .then((names) => {
      for (const name of names) if (name !== current) add(name);
    })
    .catch(() => {}); // the page's own request shows the error (or asks for a key)
  return select;
}

/** A thumbnail, loaded with the API key when one is set. */
export function thumbnail(imageId, alt) {
  const img = h("img.thumb", { alt: alt || `picture ${short(imageId)}`, width: 160, height: 160 });
  loadImage(img, `/v1/images/${encodeURIComponent(imageId)}/thumbnail`);
  return img;
}

/** A picture in a grid: thumbnail (a link to its page), lines of text, then actions. */
export function pictureCard(imageId, collection, lines, actions = []) {
  const params = collection ? { collection } : undefined;
  const link = imageId
    ? h("a.open", { href: href("image", params, imageId), title: "open this picture" }, thumbnail(imageId, lines[0]))
    : null;
  return h(
    "li.card",
    {},
    link,
    ...lines.filter(Boolean).map((t, i) => h(i === 0 ? "p.caption" : "p.meta", { text: t })),
    actions.length ? h("div.actions", {}, ...actions) : null,
  );
}

/** A drop target around a file input: dropped files are given to onFiles(FileList). */
export function dropZone(input, text, onFiles) {
  const zone = h("div.drop", {}, h("p", { text }), input);
  zone.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    const dt = ev.dataTransfer;
    if (!dt) return;
    // A dropped folder arrives as an entry, not as files: walk it for the files inside.
    const entries = [...(dt.items || [])].map((it) => it.webkitGetAsEntry && it.webkitGetAsEntry()).filter(Boolean);
    const files = entries.some((e) => e.isDirectory) ? await filesOf(entries) : [...dt.files];
    if (files.length) onFiles(files);
  });
  input.addEventListener("change", () => input.files.length && onFiles(input.files));
  return zone;
}

/** Every file under some FileSystemEntry objects (folders walked depth first). */
async function filesOf(entries) {
  const out = [];
  for (const entry of entries) {
    if (entry.isFile) out.push(await new Promise((ok, fail) => entry.file(ok, fail)));
    else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
        if (!batch.length) break; // readEntries answers in batches until an empty one
        out.push(...(await filesOf(batch)));
      }
    }
  }
  return out;
}

// Tiny DOM helpers: build elements without innerHTML (nothing the API returns is parsed as HTML).

/** h("div.card", {onclick}, child, ...) -> element; "tag.class1.class2", props, children. */
export function h(spec, props = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else if (key === "value") el.value = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** A labelled form control: <label for=id>text</label> + the control. */
export function field(text, control, hint) {
  const label = h("label", { for: control.id, text });
  return h("div.field", {}, label, control, hint ? h("small.hint", { text: hint }) : null);
}

/** A status line: message, kind "error" | "busy" | "" (role=status, or alert for errors). */
export function setStatus(el, message, kind = "") {
  el.textContent = message || "";
  el.className = "status" + (kind ? " " + kind : "");
  el.setAttribute("role", kind === "error" ? "alert" : "status");
}

/** Shorten an id for display. */
export const short = (id) => (id || "").slice(0, 12);

/** Parse a JSON box: undefined when empty, an object, or throws a readable Error. */
export function parseJsonObject(text, what) {
  const raw = (text || "").trim();
  if (!raw) return undefined;
  let value;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${err.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${what} must be a JSON object, e.g. {"album": "holidays"}`);
  }
  return value;
}

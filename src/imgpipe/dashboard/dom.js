// Element building with DOM APIs only. Everything that comes from an image (file names, EXIF,
// tags, error messages) is data: it only ever becomes a text node or an attribute value, never
// markup: no string is ever parsed as HTML anywhere in the dashboard.

/**
 * `h("a", {class: "x", href: url, onclick: fn}, "text", child)`: props become attributes
 * (`class`, `text`, `dataset` and `on*` are special); children are nodes or strings.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

/** Append nodes and strings (as text) to `parent`, skipping null, undefined and false. */
export function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** An http(s) URL resolved against the page, or null: no `javascript:` or `data:` links. */
export function safeUrl(url, base = document.baseURI) {
  try {
    const resolved = new URL(url, base);
    return resolved.protocol === "http:" || resolved.protocol === "https:" ? resolved.href : null;
  } catch {
    return null;
  }
}

/** `#rrggbb` or null, for colours that go into a style property. */
export function hexColour(value) {
  return typeof value === "string" && /^#[0-9a-f]{6}$/i.test(value) ? value : null;
}

/** Say `message` to screen readers (and show it briefly) through the page's live region. */
export function announce(message) {
  const toast = document.getElementById("toast");
  toast.textContent = message;
  toast.classList.add("visible");
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => toast.classList.remove("visible"), 4000);
}

// The imgpipe HTTP API, as the dashboard uses it. URLs are relative to the page's folder, so the
// dashboard also works behind an API Gateway stage prefix (/prod/dashboard -> /prod/images).

import { authHeaders, unauthorized } from "./auth.js";
import { safeUrl } from "./dom.js";

/** Largest file sent straight to POST /images (the API's direct upload cap). */
export const DIRECT_MAX_BYTES = 4 * 1024 * 1024;

const BASE = new URL(".", document.baseURI);

/** An API path ("/images/x" or "images/x") as an absolute URL on this deployment. */
export function apiUrl(path) {
  return new URL(String(path).replace(/^\/+/, ""), BASE).href;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The error carried by a response body: imgpipe's JSON shape, S3's XML shape, or the status. */
function errorFrom(status, text, contentType) {
  try {
    if ((contentType || "").includes("json")) {
      const { error } = JSON.parse(text);
      if (error && typeof error.code === "string") {
        return new ApiError(status, error.code, String(error.message || error.code));
      }
    } else if ((contentType || "").includes("xml")) {
      const xml = new DOMParser().parseFromString(text, "application/xml");
      const message = xml.querySelector("Message")?.textContent;
      const code = xml.querySelector("Code")?.textContent;
      const ours = status === 403 ? "upload_policy" : "internal";
      if (message) return new ApiError(status, ours, `${code}: ${message}`);
    }
  } catch {
    // fall through to the status line
  }
  const code = { 413: "too_large_bytes", 415: "unsupported_type" }[status] || "internal";
  return new ApiError(status, code, `the server answered ${status}`);
}

// -- access -----------------------------------------------------------------------------------
// auth.js owns the credentials; every call goes through `authorized`.

/** `send(headers)`; on a 401 let auth.js get new credentials and send again, until it works or
 * there are none. */
async function authorized(send) {
  for (let retry = false; ; retry = true) {
    try {
      return await send(await authHeaders());
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      if (!(await unauthorized(retry))) throw error;
    }
  }
}

/** How this deployment wants to be called ({auth: "none" | "token" | "oidc", oidc?}); "none"
 * if unknown. */
export async function loadConfig() {
  try {
    const response = await fetch(apiUrl("dashboard/config.json"), { cache: "no-store" });
    if (response.ok) return await response.json();
  } catch {
    // an older server, or offline: the 401 path still asks for a token when one is needed
  }
  return { auth: "none" };
}

// -- calls ------------------------------------------------------------------------------------

function request(method, path, json) {
  return authorized((headers) => send(method, path, json, headers));
}

async function send(method, path, json, headers) {
  const init = { method, cache: "no-store", headers: { Accept: "application/json", ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(apiUrl(path), init);
  } catch {
    throw new ApiError(0, "network", "the server cannot be reached");
  }
  if (!response.ok) {
    throw errorFrom(response.status, await response.text(), response.headers.get("content-type"));
  }
  return response.status === 204 ? null : response.json();
}

export function listImages({ status = "", tag = "", cursor = "", limit = 24 } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (status) query.set("status", status);
  if (tag) query.set("tag", tag);
  if (cursor) query.set("cursor", cursor);
  return request("GET", `images?${query}`);
}

export const getImage = (id) => request("GET", `images/${encodeURIComponent(id)}`);
export const deleteImage = (id) => request("DELETE", `images/${encodeURIComponent(id)}`);
export const reprocessImage = (id) =>
  request("POST", `images/${encodeURIComponent(id)}/reprocess`);
/** Make (x, y) - display pixels - the point the image's cover crops keep (re-renders them). */
export const setFocalPoint = (id, x, y) =>
  request("PUT", `images/${encodeURIComponent(id)}/focal-point`, { x, y });
/** Processed images whose perceptual hash is within `maxDistance` of 64 bits, closest first. */
export const similarImages = (id, { maxDistance = 10, limit = 12 } = {}) =>
  request("GET", `images/${encodeURIComponent(id)}/similar?max_distance=${maxDistance}&limit=${limit}`);

/** POST `body` with XMLHttpRequest (fetch cannot report upload progress). */
function post(url, body, onProgress, headers = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      const contentType = xhr.getResponseHeader("content-type");
      if (xhr.status >= 200 && xhr.status < 300) resolve({ text: xhr.responseText, contentType });
      else reject(errorFrom(xhr.status, xhr.responseText, contentType));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError(0, "network", "the connection failed during the upload")),
    );
    xhr.send(body);
  });
}

// Magic numbers -> the content type an upload form is signed for (file.type is a guess from the
// extension, and empty for HEIC on many systems). The server checks the bytes again anyway.
async function sniffType(file) {
  const b = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  const ascii = (from, to) => String.fromCharCode(...b.slice(from, to));
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "image/jpeg";
  if (ascii(0, 4) === "\x89PNG") return "image/png";
  if (ascii(0, 4) === "GIF8") return "image/gif";
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "image/webp";
  if (ascii(0, 4) === "II*\0" || ascii(0, 4) === "MM\0*") return "image/tiff";
  if (ascii(4, 8) === "ftyp") {
    const brand = ascii(8, 12);
    if (brand === "avif" || brand === "avis") return "image/avif";
    if (["heic", "heix", "hevc", "heim", "heis"].includes(brand)) return "image/heic";
    if (brand === "mif1" || brand === "msf1") return "image/heif";
  }
  return file.type || "application/octet-stream";
}

async function uploadDirect(file, onProgress) {
  const form = new FormData();
  form.append("file", file, file.name);
  const url = apiUrl(`images?${new URLSearchParams({ filename: file.name })}`);
  const { text } = await authorized((headers) => post(url, form, onProgress, headers));
  return JSON.parse(text).id;
}

async function uploadWithForm(file, onProgress, onGranted) {
  const body = { filename: file.name, content_type: await sniffType(file), bytes: file.size };
  const grant = await request("POST", "uploads", body);
  onGranted(grant.id);
  const url = safeUrl(grant.upload.url);
  const form = new FormData();
  for (const [name, value] of Object.entries(grant.upload.fields)) form.append(name, value);
  form.append("file", file, file.name); // S3 ignores every field after the file
  // No Authorization header: the signed form is the credential (S3 would refuse a bearer token).
  try {
    if (!url) throw new ApiError(0, "internal", "the upload form has no usable URL");
    await post(url, form, onProgress);
  } catch (error) {
    await deleteImage(grant.id).catch(() => {}); // give the granted record back
    throw error;
  }
  return grant.id;
}

/**
 * Upload `file`; resolves to the new image id. Up to 4 MiB through POST /images, larger files
 * (or when the server says the direct path is too small) through POST /uploads and its form.
 * `onGranted(id)` is called as soon as an id exists (before the bytes of a large file are sent).
 */
export async function uploadFile(file, { onProgress = () => {}, onGranted = () => {} } = {}) {
  if (file.size <= DIRECT_MAX_BYTES) {
    try {
      return await uploadDirect(file, onProgress);
    } catch (error) {
      if (!(error instanceof ApiError) || error.code !== "too_large_bytes") throw error;
    }
  }
  return uploadWithForm(file, onProgress, onGranted);
}

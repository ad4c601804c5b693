// Numbers, dates and error codes in plain words.

const PLAIN_ERRORS = {
  empty: "The file is empty.",
  unsupported_type:
    "This is not an image type imgpipe accepts (JPEG, PNG, GIF, WebP, AVIF, HEIC or TIFF).",
  too_large_bytes: "The file is larger than imgpipe accepts.",
  too_many_pixels: "The image has too many pixels, or a side too long, to process safely.",
  too_many_frames: "The animation has too many frames to process safely.",
  corrupt: "The file is damaged: it cannot be read as an image.",
  truncated: "The file is incomplete: it ends before the image does.",
  timeout: "Processing took too long and was stopped.",
  upload_policy: "The upload was refused: its signed form expired or did not match the file.",
  bad_request: "The upload was not understood by the server.",
  not_found: "This image no longer exists.",
  network: "The connection failed before the upload finished.",
  internal: "Something went wrong inside imgpipe while processing this image.",
};

export const STATUS_LABELS = {
  uploading: "Uploading",
  pending: "Pending",
  processing: "Processing",
  processed: "Processed",
  rejected: "Rejected",
  failed: "Failed",
};

/** A sentence for an error code, whatever the server's technical message says. */
export function plainError(error) {
  const code = error && typeof error.code === "string" ? error.code : "internal";
  return PLAIN_ERRORS[code] || PLAIN_ERRORS.internal;
}

/** 1536 -> "1.5 KB" (decimal units, like file managers). */
export function formatBytes(bytes) {
  if (typeof bytes !== "number" || !Number.isFinite(bytes)) return "–";
  if (bytes < 1000) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1000;
    unit += 1;
  } while (value >= 1000 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatSize(width, height) {
  return Number.isInteger(width) && Number.isInteger(height) ? `${width} × ${height}` : "–";
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A server timestamp (ISO 8601 UTC, microseconds) in the reader's locale and time zone. */
export function formatInstant(iso) {
  if (typeof iso !== "string") return "–";
  const date = new Date(iso.replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(date.getTime()) ? iso : DATE_TIME.format(date);
}

/** A capture time as the camera recorded it (its own clock and offset, not converted). */
export function formatCaptureTime(iso) {
  if (typeof iso !== "string") return null;
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?(.*)$/.exec(iso);
  if (!match) return iso;
  const [, y, mo, d, hh, mm, ss = "00", offset] = match;
  const day = new Date(Date.UTC(+y, +mo - 1, +d));
  const dayText = day.toLocaleDateString(undefined, { dateStyle: "medium", timeZone: "UTC" });
  return `${dayText}, ${hh}:${mm}:${ss}${offset ? ` (UTC${offset})` : ""}`;
}

export function formatPercent(fraction) {
  return typeof fraction === "number" ? `${Math.round(fraction * 100)} %` : "–";
}

/** "1/125 s · f/2.8 · ISO 200 · 50 mm" from the EXIF summary, or null when there is none. */
export function formatExposure(exif) {
  if (!exif) return null;
  const parts = [];
  if (exif.exposure) parts.push(`${exif.exposure} s`);
  if (typeof exif.f_number === "number") parts.push(`f/${+exif.f_number.toFixed(1)}`);
  if (typeof exif.iso === "number") parts.push(`ISO ${exif.iso}`);
  if (typeof exif.focal_length_mm === "number") {
    parts.push(`${+exif.focal_length_mm.toFixed(1)} mm`);
  }
  return parts.length ? parts.join(" · ") : null;
}

/** "Canon EOS R5", without repeating the make when the model already starts with it. */
export function formatCamera(exif) {
  if (!exif) return null;
  const make = typeof exif.make === "string" ? exif.make.trim() : "";
  const model = typeof exif.model === "string" ? exif.model.trim() : "";
  if (make && model.toLowerCase().startsWith(make.toLowerCase())) return model;
  return [make, model].filter(Boolean).join(" ") || null;
}

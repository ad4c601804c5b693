// Uploads: files from the picker, a drop or a paste become cards at once, and go up three at
// a time (api.js chooses the direct or the signed-form path).

import { ApiError, uploadFile } from "./api.js";
import { setCardProgress } from "./cards.js";
import { announce } from "./dom.js";
import { plainError } from "./format.js";
import { entryFor, rekey } from "./store.js";

const PARALLEL_UPLOADS = 3;
const waiting = []; // entries waiting for an upload slot
let uploading = 0;
let serial = 0;
let page = null; // {ui, addEntry, draw, receive, removeEntry, refreshSummary}

function queueFiles(fileList) {
  const files = [...fileList];
  if (!files.length) return;
  for (const file of files) {
    serial += 1;
    const entry = { key: `upload-${serial}`, id: null, record: null };
    entry.upload = { file, phase: "uploading", error: null };
    page.addEntry(entry, { prepend: true });
    waiting.push(entry);
  }
  announce(`Uploading ${files.length} file${files.length === 1 ? "" : "s"}`);
  page.refreshSummary();
  pumpUploads();
}

function pumpUploads() {
  while (uploading < PARALLEL_UPLOADS && waiting.length) {
    const entry = waiting.shift();
    uploading += 1;
    upload(entry).finally(() => {
      uploading -= 1;
      pumpUploads();
    });
  }
}

async function upload(entry) {
  const { file } = entry.upload;
  try {
    const id = await uploadFile(file, {
      onProgress: (fraction) => setCardProgress(entry, fraction),
      onGranted: (grantedId) => {
        entry.id = grantedId;
      },
    });
    const twin = entryFor(id);
    if (twin && twin !== entry) page.removeEntry(twin); // a reload listed it while bytes were in flight
    rekey(entry, id);
    entry.id = id;
    entry.upload.phase = "done";
    page.receive({ id, status: "pending", filename: file.name, created_at: new Date().toISOString() });
  } catch (error) {
    const code = error instanceof ApiError ? error.code : "internal";
    entry.id = null;
    entry.upload.phase = "error";
    entry.upload.error = { code, message: error.message };
    page.draw(entry);
    announce(`${file.name} was refused: ${plainError(entry.upload.error)}`);
  }
}

/** Wire the picker, drag and drop and paste; `hooks` are the gallery's. */
export function setupUploads(hooks) {
  page = hooks;
  const { ui } = hooks;
  ui.pick.addEventListener("click", () => ui.fileInput.click());
  ui.fileInput.addEventListener("change", () => {
    queueFiles(ui.fileInput.files);
    ui.fileInput.value = "";
  });

  let dragDepth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    dragDepth += 1;
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", (event) => {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) document.body.classList.remove("dragging");
  });
  document.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    document.body.classList.remove("dragging");
    queueFiles(event.dataTransfer.files);
  });
  document.addEventListener("paste", (event) => {
    const files = event.clipboardData?.files;
    if (files?.length) queueFiles(files);
  });
}

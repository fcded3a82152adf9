/*
 * The admin's "Add a video" page: the browser uploads the file straight to S3 with
 * Uppy's S3 multipart plugin. Every S3 call but the part PUTs goes through the admin
 * endpoints (/admin/uploads/...), which start, sign, list, complete and abort the
 * multipart upload and keep the draft video in step; the parts go from the browser
 * to the presigned URLs. An upload interrupted by a reload is resumed when the admin
 * picks the same file again: the page remembers (localStorage) which multipart upload
 * belongs to which file, asks S3 which parts it already holds, and sends only the rest.
 * Once the upload completes, a second bar follows the processing (window.vidgatePublishing
 * from /static/publishing-state.js polls the video's state) until "Ready", with links to
 * the video's page and a preview, or "Failed" with the reason.
 * Built by esbuild into /static/vendor/uploader.js (no inline script: the CSP forbids it).
 */
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

const STORE_KEY = "vidgate.uploads.v1";

function $(id) {
  return document.getElementById(id);
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

class RequestError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, url, body, signal) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
    signal,
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let data = null;
  try {
    data = await response.json();
  } catch (ignored) {
    data = null;
  }
  if (!response.ok) {
    const message = data && data.message ? data.message : `The server answered ${response.status}.`;
    throw new RequestError(response.status, data && data.error, message);
  }
  return data;
}

function readRecords() {
  try {
    const parsed = JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}");
    return parsed && typeof parsed === "object" ? parsed : {};
  } catch (ignored) {
    return {};
  }
}

function writeRecords(records) {
  try {
    window.localStorage.setItem(STORE_KEY, JSON.stringify(records));
  } catch (ignored) {
    /* private mode or full: resuming after a reload is then not possible */
  }
}

function fingerprint(file) {
  return [file.name, file.size, file.lastModified || 0].join(":");
}

function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function start() {
  const form = $("upload-form");
  if (!form) {
    return;
  }
  const base = form.dataset.uploadsUrl;
  const partSize = Number(form.dataset.partSize) || 8 * 1024 * 1024;
  const fileInput = $("upload-file");
  const startButton = $("upload-start");
  const cancelButton = $("upload-cancel");
  const status = $("upload-status");
  const bar = $("upload-progress");
  const percentText = $("upload-percent");
  const speedText = $("upload-speed");
  const message = $("upload-message");
  const resumeNote = $("upload-resume");

  let current = null; // {videoId, uploadId, key, fp}
  let samples = [];
  let stopFollowing = null;

  function say(text, kind) {
    message.textContent = text;
    message.dataset.kind = kind || "info";
    message.hidden = !text;
  }

  function setState(state) {
    form.dataset.state = state;
    const busy = state === "uploading";
    startButton.disabled = busy;
    fileInput.disabled = busy;
    cancelButton.hidden = !busy;
  }

  function remember() {
    if (!current) {
      return;
    }
    const records = readRecords();
    records[current.fp] = {
      videoId: current.videoId,
      uploadId: current.uploadId,
      key: current.key,
      name: current.name,
      at: Date.now(),
    };
    writeRecords(records);
  }

  function forget(fp) {
    const records = readRecords();
    delete records[fp];
    writeRecords(records);
    showPending();
  }

  function showPending() {
    const names = Object.values(readRecords()).map((r) => r.name);
    resumeNote.hidden = names.length === 0;
    resumeNote.textContent = names.length
      ? `An upload was interrupted (${names.join(", ")}). Pick the same file again to resume it.`
      : "";
  }

  function endpoint(path) {
    return `${base}/${encodeURIComponent(current.videoId)}${path}`;
  }

  const uppy = new Uppy({ autoProceed: false, allowMultipleUploadBatches: true });
  uppy.use(AwsS3, {
    shouldUseMultipart: true,
    limit: 4,
    // S3 takes at most 10,000 parts: big files get bigger parts.
    getChunkSize: (file) => Math.max(partSize, Math.ceil(file.size / 10000)),
    async createMultipartUpload(file) {
      const created = await api("POST", base, {
        title: form.elements.title.value,
        description: form.elements.description.value,
        tier: form.elements.tier.value,
        file_name: file.name,
        size: file.size,
      });
      current = {
        videoId: created.video_id,
        uploadId: created.upload_id,
        key: created.key,
        fp: fingerprint(file.data),
        name: file.name,
      };
      form.dataset.videoId = created.video_id;
      remember();
      return { uploadId: created.upload_id, key: created.key };
    },
    async signPart(file, { uploadId, partNumber, signal }) {
      const signed = await api(
        "POST",
        endpoint("/parts"),
        { upload_id: uploadId, part_numbers: [partNumber] },
        signal,
      );
      return { method: "PUT", url: signed.urls[String(partNumber)] };
    },
    async listParts(file, { uploadId, signal }) {
      const listed = await api(
        "GET",
        endpoint(`/parts?upload_id=${encodeURIComponent(uploadId)}`),
        undefined,
        signal,
      );
      return listed.parts;
    },
    async completeMultipartUpload(file, { uploadId, parts, signal }) {
      const done = await api(
        "POST",
        endpoint("/complete"),
        {
          upload_id: uploadId,
          parts: parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag })),
        },
        signal,
      );
      return { location: done.page_url };
    },
    async abortMultipartUpload(file, { uploadId }) {
      if (current) {
        await api("POST", endpoint("/abort"), { upload_id: uploadId });
      }
    },
  });

  uppy.on("upload-progress", (file, progress) => {
    if (!progress.bytesTotal) {
      return;
    }
    const percent = Math.floor((progress.bytesUploaded / progress.bytesTotal) * 100);
    bar.value = percent;
    percentText.textContent = `${percent} %`;
    const now = performance.now();
    samples.push([now, progress.bytesUploaded]);
    samples = samples.filter(([t]) => now - t <= 5000);
    if (samples.length > 1) {
      const [t0, b0] = samples[0];
      const seconds = (now - t0) / 1000;
      if (seconds > 0) {
        speedText.textContent = `${formatBytes(Math.max(0, progress.bytesUploaded - b0) / seconds)}/s`;
      }
    }
  });

  const publish = {
    box: $("publish-status"),
    heading: $("publish-heading"),
    bar: $("publish-progress"),
    percent: $("publish-percent"),
    message: $("publish-message"),
    links: $("publish-links"),
    page: $("publish-video-page"),
    preview: $("publish-preview"),
  };

  function resetPublishing() {
    if (stopFollowing) {
      stopFollowing();
      stopFollowing = null;
    }
    if (publish.box) {
      publish.box.hidden = true;
      publish.box.dataset.state = "";
      publish.links.hidden = true;
      publish.message.hidden = true;
    }
  }

  function showPublishing(data) {
    publish.box.dataset.state = data.state;
    publish.links.hidden = true;
    publish.message.hidden = true;
    if (data.state === "uploading") {
      publish.heading.textContent = "Processing";
      publish.bar.removeAttribute("value"); // indeterminate: the ingest has not started yet
      publish.percent.textContent = "Waiting for the transcoder…";
    } else if (data.state === "processing") {
      publish.heading.textContent = "Processing";
      publish.bar.value = data.progress || 0;
      publish.percent.textContent = `${data.progress || 0} %`;
    } else if (data.state === "ready") {
      publish.heading.textContent = "Ready";
      publish.bar.value = 100;
      publish.percent.textContent = "100 %";
      publish.page.href = data.links.page;
      publish.preview.href = data.links.preview;
      publish.links.hidden = false;
      publish.message.textContent = data.published
        ? `“${data.title}” is ready and published.`
        : `“${data.title}” is ready. Publish it from its page when you want viewers to see it.`;
      publish.message.dataset.kind = "success";
      publish.message.hidden = false;
    } else if (data.state === "failed") {
      publish.heading.textContent = "Failed";
      publish.page.href = data.links.page;
      publish.preview.hidden = true;
      publish.links.hidden = false;
      publish.message.textContent = `Processing failed: ${data.failure_reason}`;
      publish.message.dataset.kind = "error";
      publish.message.hidden = false;
    }
  }

  function followPublishing(videoId) {
    if (!publish.box || !window.vidgatePublishing) {
      return;
    }
    resetPublishing();
    publish.box.hidden = false;
    publish.preview.hidden = false;
    showPublishing({ state: "uploading" });
    const url = publish.box.dataset.stateUrlTemplate.replace(
      "VIDEO_ID",
      encodeURIComponent(videoId),
    );
    stopFollowing = window.vidgatePublishing.follow(url, showPublishing, (why) => {
      publish.message.textContent = why;
      publish.message.dataset.kind = "error";
      publish.message.hidden = false;
    });
  }

  uppy.on("upload-success", (file, response) => {
    bar.value = 100;
    percentText.textContent = "100 %";
    if (current) {
      forget(current.fp);
    }
    setState("done");
    const link = response && response.uploadURL;
    const videoId = form.dataset.videoId;
    say("Uploaded. The video is being processed; it appears in the list with its state.", "success");
    if (link) {
      const a = document.createElement("a");
      a.href = link;
      a.textContent = " Open the video's page.";
      a.id = "upload-video-link";
      message.appendChild(a);
    }
    if (videoId) {
      followPublishing(videoId);
    }
  });

  uppy.on("upload-error", (file, error) => {
    setState("failed");
    say(`The upload stopped: ${error && error.message ? error.message : "unknown error"}`, "error");
  });

  async function resumeIfKnown(file) {
    const fp = fingerprint(file);
    const record = readRecords()[fp];
    if (!record) {
      return null;
    }
    current = { ...record, fp };
    try {
      await api("GET", endpoint(`/parts?upload_id=${encodeURIComponent(record.uploadId)}`));
    } catch (error) {
      if (error instanceof RequestError && (error.status === 404 || error.status === 400)) {
        forget(fp); // finished, cancelled or expired: start over
        current = null;
        return null;
      }
      throw error;
    }
    return record;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      say("Choose a video file first.", "error");
      return;
    }
    say("", "info");
    resetPublishing();
    samples = [];
    bar.value = 0;
    percentText.textContent = "0 %";
    speedText.textContent = "";
    status.hidden = false;
    setState("uploading");
    try {
      uppy.clear();
      const id = uppy.addFile({ name: file.name, type: file.type, data: file, source: "Local" });
      const record = await resumeIfKnown(file);
      if (record) {
        form.dataset.videoId = record.videoId;
        form.dataset.resumed = "true";
        uppy.setFileState(id, { s3Multipart: { uploadId: record.uploadId, key: record.key } });
        say("Resuming the earlier upload of this file: parts already sent are skipped.", "info");
      } else {
        current = null;
        form.dataset.resumed = "false";
      }
      await uppy.upload();
    } catch (error) {
      if (form.dataset.state === "done") {
        return;
      }
      setState("failed");
      say(error && error.message ? error.message : "The upload could not start.", "error");
    }
  });

  cancelButton.addEventListener("click", () => {
    const fp = current && current.fp;
    uppy.cancelAll(); // aborts the multipart upload through abortMultipartUpload
    if (fp) {
      forget(fp);
    }
    setState("cancelled");
    bar.value = 0;
    percentText.textContent = "0 %";
    speedText.textContent = "";
    say("Upload cancelled. Nothing was kept.", "info");
  });

  showPending();
  setState("idle");
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}

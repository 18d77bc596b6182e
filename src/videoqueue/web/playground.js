// The videoqueue playground: plain JavaScript, no build step. It talks only to this server's
// /api/v1 routes; the API key stays in this browser's localStorage.
"use strict";

const KEY_STORAGE = "videoqueue.apiKey";
const MODEL_STORAGE = "videoqueue.model";
const API = new URL("api/v1/", document.baseURI);
const POLL_MS = 1000;
const QUOTE_DELAY_MS = 250;
const KEY_CHECK_DELAY_MS = 600;

// The media fields the page offers as file inputs (sent as data URLs), by request field.
const MEDIA = {
  image_url: { label: "Start image", accept: "image/*" },
  end_image_url: { label: "End image", accept: "image/*" },
  audio_url: { label: "Audio (WAV or MP3)", accept: "audio/*,.wav,.mp3" },
  video_url: { label: "Video", accept: "video/*,.mp4,.mov,.webm" },
  reference_image_urls: { label: "Reference images", accept: "image/*", multiple: true },
  reference_video_urls: { label: "Reference videos", accept: "video/*,.mp4,.mov", multiple: true },
  reference_audio_urls: { label: "Reference audio", accept: "audio/*,.wav,.mp3", multiple: true },
  // Kling's elements, one per image as its frontal view; extra views and clips need the API.
  elements: {
    label: "Elements",
    accept: "image/*",
    multiple: true,
    hint:
      "One element per image, its frontal view; the prompt names them @Element1, @Element2… " +
      "in the order chosen. Extra views and video elements: send elements through the API.",
    toBody: (url) => ({ frontal_image_url: url }),
  },
  scene_image_urls: { label: "Scene images", accept: "image/*", multiple: true },
};
const PROMPTS = ["prompt", "negative_prompt"]; // the only fields that never change the price
const MODEL_TYPES = {
  "text-to-video": "Text to video",
  "image-to-video": "Image to video",
  video: "Video to video",
};

const state = {
  models: new Map(),
  model: null,
  quoteTimer: 0,
  quoteSeq: 0,
  keyTimer: 0,
  videoSeconds: new Map(), // input field -> seconds of each chosen video, for the quote
  job: null, // {model, queueId, downloadUrl, cancelled}
  objectUrl: null,
};

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === undefined || value === null) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

// ---------------------------------------------------------------- talking to the server

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

async function api(method, path, body) {
  const headers = {};
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(new URL(path, API), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
}

// What a failed response means (failures.js), with what the page knows: the key, the price
// it shows, and its fields' labels.
function describe(response) {
  const quote = $("quote").dataset.usd;
  return describeFailure(response, {
    hasKey: Boolean(apiKey()),
    quoteUsd: quote === undefined ? null : Number(quote),
    label: (field) => control(field)?.labels?.[0]?.textContent || null,
  });
}

function showError(box, heading, lines) {
  box.replaceChildren(
    element("strong", {}, heading),
    element("ul", {}, ...lines.map((line) => element("li", {}, line))),
  );
  box.hidden = false;
}

function clearError(box) {
  box.replaceChildren();
  box.hidden = true;
}

async function showFailure(box, what, response) {
  const { summary, lines } = await describe(response);
  showError(box, `${what}: ${summary} (${response.status})`, lines);
}

function showUnreachable(box, what, error) {
  showError(box, `${what}: the server could not be reached`, [String(error.message || error)]);
}

// The response of `send()` when it succeeds; otherwise null, and `box` says what went wrong.
async function attempt(box, what, send) {
  let response;
  try {
    response = await send();
  } catch (error) {
    showUnreachable(box, what, error);
    return null;
  }
  if (response.ok) return response;
  await showFailure(box, what, response);
  return null;
}

// ---------------------------------------------------------------- the key

function showKeyState(message, warning = false) {
  const status = $("key-status");
  if (!apiKey()) {
    status.textContent =
      "No API key: paste one to queue videos. Models and prices work without a key " +
      "(upscale prices need one). The operator makes keys with `videoqueue keys create`.";
    warning = true;
  } else {
    status.textContent =
      message ??
      "The key is kept in this browser only (localStorage) and sent only to this server.";
  }
  status.classList.toggle("warning", warning);
  updateQueueButton();
}

async function checkKey() {
  const key = apiKey();
  if (!key) return;
  let response;
  try {
    response = await api("GET", "video/jobs?limit=1");
  } catch (error) {
    showKeyState(`The key could not be checked: ${error.message}`, true);
    return;
  }
  if (key !== apiKey()) return; // changed meanwhile
  if (response.ok) {
    showKeyState("Key accepted. It is kept in this browser only (localStorage).");
  } else {
    const { lines } = await describe(response);
    showKeyState(`The server refused this key (${response.status}): ${lines[0]}`, true);
  }
}

function setUpKey() {
  const input = $("api-key");
  input.value = apiKey();
  input.addEventListener("input", () => {
    const key = input.value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    showKeyState(key ? "Checking the key…" : undefined);
    clearTimeout(state.keyTimer);
    state.keyTimer = setTimeout(checkKey, KEY_CHECK_DELAY_MS);
    scheduleQuote();
  });
  $("forget-key").addEventListener("click", () => {
    localStorage.removeItem(KEY_STORAGE);
    input.value = "";
    showKeyState();
  });
  showKeyState();
  checkKey();
}

// ---------------------------------------------------------------- models

async function loadModels() {
  const select = $("model");
  const about = $("model-about");
  const response = await attempt($("request-error"), "Loading the models", () =>
    api("GET", "models?type=video"),
  );
  if (!response) return;
  const groups = new Map();
  for (const model of (await response.json()).data) {
    state.models.set(model.id, model);
    const type = model.model_spec.constraints.model_type;
    if (!groups.has(type))
      groups.set(type, element("optgroup", { label: MODEL_TYPES[type] || type }));
    const name = model.model_spec.name;
    const deprecated = model.model_spec.deprecation ? " (deprecated)" : "";
    groups
      .get(type)
      .append(element("option", { value: model.id }, `${name}: ${model.id}${deprecated}`));
  }
  select.replaceChildren(...groups.values());
  if (!state.models.size) {
    about.textContent = "This server lists no video models.";
    return;
  }
  const remembered = localStorage.getItem(MODEL_STORAGE);
  if (remembered && state.models.has(remembered)) select.value = remembered;
  select.disabled = false;
  select.addEventListener("change", () => chooseModel(select.value));
  chooseModel(select.value);
}

function chooseModel(id) {
  const model = state.models.get(id);
  state.model = model;
  localStorage.setItem(MODEL_STORAGE, id);
  const spec = model.model_spec;
  const notes = [];
  if (spec.description) notes.push(spec.description);
  if (spec.videoqueue?.engine) notes.push(`Engine: ${spec.videoqueue.engine}.`);
  if (spec.videoqueue?.delivery === "download_url") {
    notes.push("Private model: the MP4 comes from a one-time download link.");
  }
  if (spec.deprecation) notes.push(`Deprecated: removed on ${spec.deprecation.removesAt}.`);
  $("model-about").textContent = notes.join(" ");
  buildFields(model);
  clearError($("request-error"));
  scheduleQuote();
}

// ---------------------------------------------------------------- the form

function fieldRow(name, label, control, hint, wide = false) {
  control.id = `field-${name}`;
  control.name = name;
  const labelled = element("label", { for: control.id }, label);
  const checkbox = control.type === "checkbox";
  const classes = ["field", wide && "wide", checkbox && "check"].filter(Boolean).join(" ");
  const row = element(
    "div",
    { class: classes },
    ...(checkbox ? [control, labelled] : [labelled, control]),
  );
  if (hint) {
    const hintId = `hint-${name}`;
    row.append(element("p", { id: hintId, class: "note" }, hint));
    control.setAttribute("aria-describedby", hintId);
  }
  return row;
}

function choiceRow(name, label, values, chosen) {
  const select = element(
    "select",
    {},
    ...values.map((v) => element("option", { value: v }, String(v))),
  );
  if (chosen !== undefined) select.value = String(chosen);
  return fieldRow(name, label, select);
}

function textRow(name, label, limit, required) {
  const area = element("textarea", { rows: required ? 3 : 2, maxlength: limit, required });
  return fieldRow(name, label, area, `At most ${limit} characters.`, true);
}

function buildFields(model) {
  const c = model.model_spec.constraints;
  const vq = model.model_spec.videoqueue || {};
  const media = vq.media || { fields: [], required: [] };
  const upscale = vq.upscale;
  const rows = [];
  state.videoSeconds.clear();
  if (!upscale) {
    const limit = c.prompt_character_limit || 2500;
    rows.push(textRow("prompt", "Prompt", limit, true));
    rows.push(textRow("negative_prompt", "Negative prompt (optional)", limit, false));
    if (c.durations.length) rows.push(choiceRow("duration", "Duration", c.durations));
    if (c.resolutions.length) rows.push(choiceRow("resolution", "Resolution", c.resolutions));
  } else {
    rows.push(
      choiceRow("upscale_factor", "Upscale factor", upscale.factors, upscale.default_factor),
    );
  }
  if (c.aspect_ratios.length) rows.push(choiceRow("aspect_ratio", "Aspect ratio", c.aspect_ratios));
  if (c.audio_configurable) {
    const box = element("input", { type: "checkbox", checked: true });
    rows.push(fieldRow("audio", "Audio", box, "Generate sound with the video."));
  }
  const alone = new Set(media.required.filter((g) => g.length === 1).map((g) => g[0]));
  for (const field of media.fields) {
    const kind = MEDIA[field];
    if (!kind) {
      rows.push(note(`${field} is not offered here; send it through the API.`));
      continue;
    }
    const input = element("input", {
      type: "file",
      accept: kind.accept,
      multiple: kind.multiple,
      required: alone.has(field),
    });
    const label = `${kind.label}${alone.has(field) ? "" : " (optional)"}`;
    const hint = [kind.hint || `Sent as ${field}.`, imageRules(field, c)].filter(Boolean);
    rows.push(fieldRow(field, label, input, hint.join(" "), true));
    if (kind.accept.startsWith("video/"))
      input.addEventListener("change", () => measureVideos(field, input));
  }
  for (const group of media.required.filter((g) => g.length > 1)) {
    rows.push(note(`Needs at least one of: ${mediaNames(group)}.`));
  }
  if (!c.audio_configurable) {
    const sound = c.audio ? "This model's videos have sound." : "This model's videos are silent.";
    rows.push(note(sound));
  }
  $("fields").replaceChildren(...rows);
  updateQueueButton();
}

function mediaNames(fields) {
  return fields.map((f) => MEDIA[f]?.label.toLowerCase() || f).join(", ");
}

// The groups of media.required of which no file is chosen; a one-field group is a required
// input, which the browser checks itself.
function unmetMedia() {
  const required = state.model.model_spec.videoqueue?.media?.required || [];
  const chosen = (field) => control(field)?.files?.length > 0;
  return required.filter((group) => group.length > 1 && !group.some(chosen));
}

function note(text) {
  return element("p", { class: "note wide" }, text);
}

// The limits `constraints` publishes for reference images, in words (the server checks them).
function imageRules(field, c) {
  if (field !== "reference_image_urls") return "";
  const rules = [];
  const side = c.reference_image_min_short_side_pixels;
  if (side) rules.push(`at least ${side} px on the short side`);
  const [low, high] = [c.reference_image_min_aspect_ratio, c.reference_image_max_aspect_ratio];
  if (low && high) rules.push(`width / height between ${low} and ${high}`);
  return rules.length ? `Each image: ${rules.join(", ")}.` : "";
}

// The seconds of each chosen video, read by the browser: reference videos change the price.
async function measureVideos(field, input) {
  const seconds = await Promise.all([...input.files].map(videoSeconds));
  state.videoSeconds.set(field, seconds);
  scheduleQuote();
}

function videoSeconds(file) {
  return new Promise((resolve) => {
    const probe = document.createElement("video");
    const url = URL.createObjectURL(file);
    const done = (value) => {
      URL.revokeObjectURL(url);
      resolve(value);
    };
    probe.preload = "metadata";
    probe.onloadedmetadata = () => done(probe.duration);
    probe.onerror = () => done(null);
    probe.src = url;
  });
}

function control(name) {
  // Not `form.elements.namedItem`: Kling's `elements` field would shadow `form.elements`.
  return $(`field-${name}`);
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// The request's fields other than media, as the form holds them.
function plainFields() {
  const body = { model: state.model.id };
  for (const name of ["prompt", "negative_prompt", "duration", "resolution", "aspect_ratio"]) {
    const field = control(name);
    if (field && field.value !== "") body[name] = field.value;
  }
  const factor = control("upscale_factor");
  if (factor) body.upscale_factor = Number(factor.value);
  const audio = control("audio");
  if (audio) body.audio = audio.checked;
  return body;
}

async function mediaFields() {
  const body = {};
  for (const field of state.model.model_spec.videoqueue?.media?.fields || []) {
    const input = control(field);
    if (!input || !input.files.length) continue;
    const kind = MEDIA[field];
    const urls = await Promise.all([...input.files].map(readFile));
    const values = kind.toBody ? urls.map(kind.toBody) : urls;
    body[field] = kind.multiple ? values : values[0];
  }
  return body;
}

// ---------------------------------------------------------------- the quote

function scheduleQuote() {
  clearTimeout(state.quoteTimer);
  state.quoteTimer = setTimeout(updateQuote, QUOTE_DELAY_MS);
}

async function quoteBody() {
  const { prompt, negative_prompt, ...body } = plainFields();
  const references = state.videoSeconds.get("reference_video_urls");
  if (references?.length && references.every(Number.isFinite)) {
    body.reference_video_total_duration =
      Math.round(references.reduce((a, b) => a + b, 0) * 100) / 100;
  }
  if (state.model.model_spec.videoqueue?.upscale) {
    // The server probes the file for its length, height and frame rate.
    const input = control("video_url");
    if (input?.files.length) body.video_url = await readFile(input.files[0]);
  }
  return body;
}

async function updateQuote() {
  if (!state.model) return;
  const seq = ++state.quoteSeq;
  const output = $("quote");
  const problem = $("quote-error");
  output.textContent = "…";
  delete output.dataset.usd;
  let response;
  try {
    response = await api("POST", "video/quote", await quoteBody());
  } catch (error) {
    if (seq !== state.quoteSeq) return;
    output.textContent = "—";
    problem.textContent = `The quote failed: ${error.message}`;
    problem.hidden = false;
    return;
  }
  const failure = response.ok ? null : await describe(response);
  const quote = response.ok ? (await response.json()).quote : null;
  if (seq !== state.quoteSeq) return; // a newer quote is on its way
  if (failure) {
    output.textContent = "—";
    const { summary, lines } = failure;
    problem.textContent = `No price: ${summary} (${response.status}). ${lines.join(" ")}`;
    problem.hidden = false;
    return;
  }
  output.textContent = usd(quote);
  output.dataset.usd = String(quote);
  problem.hidden = true;
}

// ---------------------------------------------------------------- queue, progress, result

function updateQueueButton() {
  const button = $("queue-button");
  const running = state.job && !state.job.ended;
  button.disabled = !apiKey() || !state.model || Boolean(running);
  button.title = apiKey() ? "" : "Paste an API key first";
}

async function queueJob(event) {
  event.preventDefault();
  const errors = $("request-error");
  clearError(errors);
  const form = $("job-form");
  if (!form.checkValidity()) {
    const missing = [...form.querySelectorAll(":invalid")].filter((f) => f.willValidate);
    showError(
      errors,
      "Fill in the form first",
      missing.map((f) => `${f.labels[0]?.textContent || f.name}: ${f.validationMessage}`),
    );
    missing[0]?.focus();
    return;
  }
  const unmet = unmetMedia(); // the server would surely refuse the request
  if (unmet.length) {
    showError(
      errors,
      "Fill in the form first",
      unmet.map((group) => `Choose at least one of: ${mediaNames(group)}.`),
    );
    return;
  }
  let body;
  try {
    body = { ...plainFields(), ...(await mediaFields()) };
  } catch (error) {
    showError(errors, "A file could not be read", [String(error)]);
    return;
  }
  const button = $("queue-button");
  button.disabled = true;
  const response = await attempt(errors, "The job was not queued", () =>
    api("POST", "video/queue", body),
  );
  if (!response) {
    updateQueueButton();
    return;
  }
  const queued = await response.json();
  startJob({ model: queued.model, queueId: queued.queue_id, downloadUrl: queued.download_url });
}

function startJob(job) {
  state.job = { ...job, ended: false };
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = null;
  const video = $("result");
  video.removeAttribute("src");
  video.hidden = true;
  $("download").hidden = true;
  clearError($("job-error"));
  $("job").hidden = false;
  $("job-id").textContent = `Model ${job.model}, queue id ${job.queueId}`;
  $("cancel-button").hidden = false;
  setProgress("Queued", 0);
  updateQueueButton();
  poll(state.job);
}

function setProgress(text, value) {
  $("job-status").textContent = text;
  const bar = $("job-progress");
  if (value === null) bar.removeAttribute("value");
  else bar.value = value;
}

function endJob(job) {
  job.ended = true;
  $("cancel-button").hidden = true;
  updateQueueButton();
}

async function poll(job) {
  while (!job.ended) {
    let response;
    try {
      response = await api("POST", "video/retrieve", { model: job.model, queue_id: job.queueId });
    } catch (error) {
      setProgress(`The server could not be reached (${error.message}); trying again…`, null);
      await pause(POLL_MS * 3);
      continue;
    }
    if (job.ended) return;
    if (response.status === 429) {
      await pause(1000 * (Number(response.headers.get("Retry-After")) || 2));
      continue;
    }
    if (!response.ok) {
      endJob(job);
      setProgress("Failed", 0);
      await showFailure($("job-error"), "The job failed", response);
      return;
    }
    const type = response.headers.get("Content-Type") || "";
    if (type.startsWith("video/")) {
      await showVideo(job, await response.blob());
      return;
    }
    const status = await response.json();
    if (status.status === "COMPLETED") {
      await fetchDownload(job);
      return;
    }
    showPending(status);
    await pause(POLL_MS);
  }
}

function showPending(status) {
  const seconds = (status.execution_duration / 1000).toFixed(1);
  if (status.queue_position !== null && status.queue_position !== undefined) {
    const ahead = status.queue_position;
    setProgress(`Queued: ${ahead} job${ahead === 1 ? "" : "s"} ahead (${seconds} s)`, 0);
  } else {
    const percent = Math.round((status.progress || 0) * 100);
    setProgress(`Running: ${percent} % (${seconds} s)`, status.progress || 0);
  }
}

// A private model's MP4 comes from its download link, which lives on this server too: it is
// fetched at this page's own origin, so the link's host name does not matter.
async function fetchDownload(job) {
  const marker = job.downloadUrl ? job.downloadUrl.indexOf("/v1/share/read/") : -1;
  if (marker < 0) {
    endJob(job);
    setProgress("Done, but this page has no download link for the job", 1);
    return;
  }
  const link = new URL(job.downloadUrl.slice(marker + 1), document.baseURI);
  const response = await attempt($("job-error"), "Fetching the download link", () =>
    fetch(link, { credentials: "omit", cache: "no-store" }),
  );
  if (!response) {
    endJob(job);
    return;
  }
  await showVideo(job, await response.blob());
}

async function showVideo(job, blob) {
  endJob(job);
  setProgress(`Done: ${(blob.size / 1024).toFixed(0)} KiB`, 1);
  state.objectUrl = URL.createObjectURL(blob);
  const video = $("result");
  video.src = state.objectUrl;
  video.hidden = false;
  const link = $("download");
  link.href = state.objectUrl;
  link.download = `${job.queueId}.mp4`;
  link.hidden = false;
}

async function cancelJob() {
  const job = state.job;
  if (!job || job.ended) return;
  const response = await attempt($("job-error"), "The job was not cancelled", () =>
    api("POST", "video/cancel", { model: job.model, queue_id: job.queueId }),
  );
  if (!response) return;
  endJob(job);
  setProgress("Cancelled; its charge was refunded", 0);
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- start

document.addEventListener("DOMContentLoaded", () => {
  setUpKey();
  $("key-form").addEventListener("submit", (event) => event.preventDefault());
  const form = $("job-form");
  const priced = (event) => {
    if (!PROMPTS.includes(event.target.name)) scheduleQuote();
  };
  form.addEventListener("input", priced);
  form.addEventListener("change", priced);
  form.addEventListener("submit", queueJob);
  $("cancel-button").addEventListener("click", cancelJob);
  loadModels();
});

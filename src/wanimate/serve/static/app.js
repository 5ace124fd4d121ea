// The browser page: a thin client of the REST API (the same calls as the curl examples in docs/serve.md).
// Files and events are fetched with the bearer token in a header, never in a URL.
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE = 10;
const state = { job: null, offset: 0, stream: null, urls: {}, materialsTried: 0, peopleTried: 0 };

function token() { return localStorage.getItem("wanimate-token") || ""; }
function headers() { return token() ? { Authorization: `Bearer ${token()}` } : {}; }

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    error.status = response.status;
    throw error;
  }
  return response;
}

// Plain words for the runner's stage names and the generation engine's sub-steps.
const WORDS = {
  preprocess: "preprocessing: pose, face and masks", generate: "generating", preview: "rendering the preview",
  compare: "writing the side-by-side video", encode: "encoding the prompt and the character",
  segment: "preparing the segment", denoise: "denoising", step: "denoising", decode: "decoding the segment",
  load: "loading the model", saved: "segment saved", resume: "resuming after the last finished segment", write: "writing the video",
};

function describe(job) {
  const p = job.progress || {};
  if (job.state === "queued") return "waiting in the queue";
  if (job.state === "done") return `finished with the ${job.backend || ""} backend`;
  if (job.state === "failed" || job.state === "cancelled") return job.state;
  const parts = [WORDS[p.message] || WORDS[p.stage] || p.message || job.state];
  if (p.num_segments) parts.push(`segment ${Math.min(p.segment + 1, p.num_segments)}/${p.num_segments}`);
  if (p.num_steps) parts.push(`step ${p.step}/${p.num_steps}`);
  if (p.eta_s != null) parts.push(`ETA ${Math.round(p.eta_s)} s`);
  if (p.attempt > 1) parts.push(`resumed (attempt ${p.attempt})`);
  return parts.join(" · ");
}

async function showVideo(name, path) {
  if (state.urls[name]) return;
  const blob = await (await api(path)).blob();
  const url = URL.createObjectURL(blob);
  state.urls[name] = url;
  const video = $(name);
  video.src = url;
  $(`${name}-fig`).hidden = false;
  const link = $(`${name}-download`);
  if (link) { link.href = url; link.download = `wanimate-${state.job}-${name}.mp4`; }
  video.play().catch(() => {});
}

async function tryMaterials(job) {
  if (state.urls.materials || job.state === "queued" || state.materialsTried > 40) return;
  state.materialsTried += 1;
  try { await showVideo("materials", job.links.materials); } catch (e) { /* not ready yet */ }
}

async function tryPeople(job) {
  if (state.urls.people || job.state === "queued" || state.peopleTried > 40) return;
  state.peopleTried += 1;
  try {
    const url = URL.createObjectURL(await (await api(job.links.people)).blob());
    state.urls.people = url;
    $("people").src = url;
    $("people-caption").innerHTML = job.options.cast
      ? `People tracked: the cast plays ids ${job.options.cast.join(", ")}`
      : "People tracked: choose one with the <code>person</code> option (its id)";
    $("people-fig").hidden = false;
  } catch (e) { /* not ready yet */ }
}

function render(job) {
  if (job.id !== state.job) return;
  $("job-card").hidden = false;
  $("job-id").textContent = job.id.slice(0, 10);
  $("job-state").textContent = job.state;
  $("job-state").className = `badge ${job.state}`;
  $("job-progress").value = job.progress ? job.progress.overall : 0;
  $("job-stage").textContent = describe(job);
  $("job-error").textContent = job.error || "";
  $("cancel").textContent = ["done", "failed", "cancelled"].includes(job.state) ? "Delete" : "Cancel and delete";
  tryMaterials(job);
  tryPeople(job);
  if (job.state === "done") {
    showVideo("result", job.links.result).catch((e) => { $("job-error").textContent = e.message; });
    showVideo("compare", job.links.compare).catch(() => {});
  }
}

async function follow(id) {
  if (state.stream) state.stream.abort();
  for (const url of Object.values(state.urls)) URL.revokeObjectURL(url);
  state.urls = {};
  state.materialsTried = 0;
  state.peopleTried = 0;
  state.job = id;
  for (const name of ["materials", "result", "compare", "people"]) { $(`${name}-fig`).hidden = true; $(name).removeAttribute("src"); }
  const controller = new AbortController();
  state.stream = controller;
  try {
    const response = await api(`/jobs/${id}/events`, { signal: controller.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (block.startsWith("event: job") && data) render(JSON.parse(data));
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") $("job-error").textContent = e.message;
  }
  if (state.job === id) loadHistory();
}

async function loadHistory() {
  try {
    const page = await (await api(`/jobs?limit=${PAGE}&offset=${state.offset}`)).json();
    const body = $("history").querySelector("tbody");
    body.replaceChildren(...page.jobs.map((job) => {
      const row = document.createElement("tr");
      const cells = [new Date(job.created * 1000).toLocaleString(), job.state, job.options.mode,
        job.backend || job.options.backend, `${Math.round((job.progress.overall || 0) * 100)}%`];
      for (const text of cells) { const cell = document.createElement("td"); cell.textContent = text; row.append(cell); }
      row.addEventListener("click", () => follow(job.id));
      return row;
    }));
    $("page-info").textContent = page.total ? `${state.offset + 1}–${state.offset + page.jobs.length} of ${page.total}` : "no jobs yet";
    $("newer").disabled = state.offset === 0;
    $("older").disabled = page.next_offset == null;
  } catch (e) {
    $("page-info").textContent = e.status === 401 ? "enter the server's token above" : e.message;
  }
}

async function loadHealth() {
  try {
    const health = await (await fetch("/health")).json();
    const queued = health.jobs.queued || 0;
    $("health").textContent = `worker ${health.worker} · ${queued} queued`;
    $("token-box").hidden = !health.auth;
    const select = $("weights");
    if (!select.options.length) {
      for (const name of health.weights) select.append(new Option(name, name));
    }
  } catch (e) {
    $("health").textContent = "server unreachable";
  }
}

function previewFile(input, thumb) {
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (!file) { thumb.hidden = true; return; }
    thumb.src = URL.createObjectURL(file);
    thumb.hidden = false;
    if (thumb.play) thumb.play().catch(() => {});
  });
}

// The cast picker: the people sheet of the chosen video (POST /people) and one character slot per id.
async function findPeople() {
  const file = $("video").files[0];
  const slots = $("cast-slots");
  slots.replaceChildren();
  $("cast-sheet-fig").hidden = true;
  if (!file) { $("cast-status").textContent = "Choose a driving video: the people in it are listed here, each with their id."; return; }
  $("cast-status").textContent = "finding the people in the video…";
  const form = new FormData();
  form.append("video", file);
  const fps = $("fps").value ? Number($("fps").value) : null;
  form.append("options", JSON.stringify({ fps }));
  try {
    const listing = await (await api("/people", { method: "POST", body: form })).json();
    if ($("video").files[0] !== file) return;  // another video was chosen meanwhile
    $("cast-sheet").src = listing.sheet;
    $("cast-sheet-fig").hidden = false;
    $("cast-status").textContent = `${listing.people.length} people in the video (${listing.video.width}x${listing.video.height}, ${listing.video.num_frames} frames)`;
    for (const person of listing.people) {
      const slot = document.createElement("label");
      slot.className = "slot";
      slot.dataset.person = person.id;
      slot.append(`person ${person.id} · frames ${person.first_frame}–${person.last_frame} · ${Math.round(person.height_px)} px`);
      const input = document.createElement("input");
      input.type = "file";
      input.accept = "image/*";
      input.id = `cast-slot-${person.id}`;
      const thumb = document.createElement("img");
      thumb.hidden = true;
      previewFile(input, thumb);
      slot.append(input, thumb);
      slots.append(slot);
    }
  } catch (e) {
    $("cast-status").textContent = `could not list the people: ${e.message}`;
  }
}

function castChosen() {
  return [...$("cast-slots").querySelectorAll(".slot")]
    .map((slot) => ({ person: Number(slot.dataset.person), file: slot.querySelector("input").files[0] }))
    .filter((slot) => slot.file);
}

function toggleCast() {
  const on = $("cast-on").checked;
  $("cast-picker").hidden = !on;
  $("image-drop").hidden = on;
  $("image").required = !on;
  if (on && $("video").files[0] && !$("cast-slots").children.length) findPeople();
}

async function submit(event) {
  event.preventDefault();
  $("form-error").textContent = "";
  const [width, height] = $("area").value.split("x").map(Number);
  const options = { mode: $("mode").value, backend: $("backend").value, weights: $("weights").value, area: [width, height] };
  // An empty number field leaves that option to the server's default.
  for (const name of NUMBERS) { if ($(name).value !== "") options[name] = Number($(name).value); }
  const form = new FormData();
  if ($("cast-on").checked) {
    const chosen = castChosen();
    if (!chosen.length) { $("form-error").textContent = "give at least one person a character image"; return; }
    options.cast = chosen.map((slot) => slot.person);
    for (const slot of chosen) form.append("cast_image", slot.file);
  } else {
    form.append("image", $("image").files[0]);
  }
  form.append("video", $("video").files[0]);
  form.append("options", JSON.stringify(options));
  $("submit").disabled = true;
  try {
    const job = await (await api("/jobs", { method: "POST", body: form })).json();
    state.offset = 0;
    loadHistory();
    follow(job.id);
  } catch (e) {
    $("form-error").textContent = e.message;
  } finally {
    $("submit").disabled = false;
  }
}

// The number fields take their defaults and bounds from the server's job options (GET /options).
const NUMBERS = ["steps", "seed", "segment_frames", "fps"];

async function loadDefaults() {
  try {
    const fields = (await (await fetch("/options")).json()).properties;
    for (const name of NUMBERS) {
      const field = fields[name] || {};
      const bounds = [field, ...(field.anyOf || [])].find((s) => s.minimum != null || s.maximum != null) || {};
      if (field.default != null) $(name).value = field.default;
      if (bounds.minimum != null) $(name).min = bounds.minimum;
      if (bounds.maximum != null) $(name).max = bounds.maximum;
    }
  } catch (e) { /* the fields stay empty and the server's defaults apply */ }
}

async function cancel() {
  if (!state.job) return;
  try { await api(`/jobs/${state.job}`, { method: "DELETE" }); } catch (e) { $("job-error").textContent = e.message; }
  if (state.stream) state.stream.abort();
  $("job-card").hidden = true;
  state.job = null;
  loadHistory();
}

window.addEventListener("DOMContentLoaded", () => {
  $("token").value = token();
  $("token").addEventListener("change", () => { localStorage.setItem("wanimate-token", $("token").value.trim()); loadHistory(); });
  previewFile($("image"), $("image-thumb"));
  previewFile($("video"), $("video-thumb"));
  $("video").addEventListener("change", () => { if ($("cast-on").checked) findPeople(); });
  $("cast-on").addEventListener("change", toggleCast);
  $("job-form").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  $("newer").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadHistory(); });
  $("older").addEventListener("click", () => { state.offset += PAGE; loadHistory(); });
  loadDefaults();
  loadHealth();
  loadHistory();
  setInterval(loadHealth, 5000);
});

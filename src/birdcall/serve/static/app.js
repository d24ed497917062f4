// The page of `birdcall serve`: choose or record a recording, upload it to /v1/analyze, show the spectrogram with
// the detections on a timeline, a sortable table whose rows play their window, and the tables to download.
// Plain browser APIs only (XMLHttpRequest, MediaRecorder, Web Audio); served by the package, no network beyond it.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { recording: null, name: null, url: null, model: null, rows: [], sort: { key: "start_time", dir: 1 }, stopAt: null, downloads: [] };

function apiKey() { return sessionStorage.getItem("birdcall-api-key") || ""; }

function headers() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", Boolean(isError));
}

function errorText(xhrOrResponse, body) {
  if (body && typeof body.detail === "string") return body.detail;
  return `HTTP ${xhrOrResponse.status}`;
}

// ---------------------------------------------------------------------------------------------- the model

async function loadModel() {
  const response = await fetch("/v1/model", { headers: headers() });
  if (response.status === 401) {
    $("key-panel").hidden = false;
    $("model-line").textContent = "An API key is needed.";
    return;
  }
  const body = await response.json();
  if (!response.ok) { $("model-line").textContent = errorText(response, body); return; }
  state.model = body;
  $("key-panel").hidden = true;
  const licence = body.license ? ` · licence ${body.license}` : "";
  $("model-line").textContent = `Model ${body.name} · ${body.labels.length} species · ${body.window.clip_duration} s windows · ${body.backend || ""}${licence}`;
  if (body.note) $("model-line").title = body.note;
  const list = $("species");
  list.textContent = "";
  for (const s of body.labels) {
    const item = document.createElement("li");
    item.textContent = s.common_name ? `${s.code}: ${s.common_name}${s.scientific_name ? " (" + s.scientific_name + ")" : ""}` : s.code;
    list.appendChild(item);
  }
  updateButtons();
}

$("save-key").addEventListener("click", () => {
  sessionStorage.setItem("birdcall-api-key", $("api-key").value.trim());
  loadModel();
});

// ---------------------------------------------------------------------------------------------- choosing

function choose(blob, name) {
  state.recording = blob;
  state.name = name;
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(blob);
  $("player").src = state.url;
  $("chosen").textContent = `${name} (${(blob.size / 1e6).toFixed(2)} MB)`;
  updateButtons();
}

function updateButtons() {
  $("analyze").disabled = !(state.recording && state.model) || Boolean(state.busy);
}

$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (file) choose(file, file.name);
});

// ---------------------------------------------------------------------------------------------- recording

let recorder = null;
let recordTimer = null;

$("record").addEventListener("click", async () => {
  if (recorder) { recorder.stop(); return; }
  if (!navigator.mediaDevices || !window.MediaRecorder) { setStatus("This browser cannot record audio.", true); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    setStatus(`No microphone: ${err.message}`, true);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (e) => { if (e.data.size) chunks.push(e.data); });
  recorder.addEventListener("stop", async () => {
    stream.getTracks().forEach((t) => t.stop());
    clearInterval(recordTimer);
    $("record").classList.remove("recording");
    $("record").textContent = "Record from the microphone";
    recorder = null;
    try {
      setStatus("Converting the recording to WAV…");
      const wav = await toWav(new Blob(chunks, { type: chunks.length ? chunks[0].type : "audio/webm" }));
      choose(wav, `recording-${new Date().toISOString().replace(/[:.]/g, "-")}.wav`);
      setStatus("");
    } catch (err) {
      setStatus(`The recording could not be decoded: ${err.message}`, true);
    }
  });
  const started = Date.now();
  recorder.start(1000);
  $("record").classList.add("recording");
  $("record").textContent = "Stop recording";
  recordTimer = setInterval(() => { $("record-time").textContent = `${((Date.now() - started) / 1000).toFixed(0)} s`; }, 250);
});

// The browser records WebM/Opus (or Ogg), which the server's decoder does not read: decode it here and send a
// 16-bit mono WAV at the model's sample rate.
async function toWav(blob) {
  const rate = state.model ? state.model.window.sample_rate : 32000;
  const context = new AudioContext();
  let decoded;
  try {
    decoded = await context.decodeAudioData(await blob.arrayBuffer());
  } finally {
    context.close();
  }
  const offline = new OfflineAudioContext(1, Math.max(1, Math.ceil(decoded.duration * rate)), rate);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  const samples = (await offline.startRendering()).getChannelData(0);
  return encodeWav(samples, rate);
}

function encodeWav(samples, rate) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + samples.length * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(44 + i * 2, x < 0 ? x * 0x8000 : x * 0x7fff, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

// ---------------------------------------------------------------------------------------------- uploading

$("analyze").addEventListener("click", () => {
  const params = new URLSearchParams({ spectrogram: "true", tables: "true", min_confidence: $("min-confidence").value || "0.1" });
  if ($("top-k").value) params.set("top_k", $("top-k").value);
  if ($("hop").value) params.set("hop", $("hop").value);
  const form = new FormData();
  form.append("file", state.recording, state.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/v1/analyze?${params}`);
  for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
  xhr.responseType = "json";
  const progress = $("progress");
  progress.hidden = false;
  progress.value = 0;
  state.busy = true;
  updateButtons();
  setStatus("Uploading…");
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) progress.value = (100 * e.loaded) / e.total;
  });
  xhr.upload.addEventListener("load", () => {
    progress.removeAttribute("value"); // indeterminate while the server analyses
    setStatus("Analysing…");
  });
  const done = () => { state.busy = false; updateButtons(); };
  xhr.addEventListener("load", () => {
    done();
    progress.hidden = true;
    if (xhr.status === 200 && xhr.response) {
      setStatus(`Analysed in ${xhr.response.elapsed.toFixed(2)} s.`);
      show(xhr.response);
    } else {
      if (xhr.status === 401) $("key-panel").hidden = false;
      setStatus(errorText(xhr, xhr.response), true);
    }
  });
  xhr.addEventListener("error", () => { done(); progress.hidden = true; setStatus("The upload failed (network error).", true); });
  xhr.send(form);
});

// ---------------------------------------------------------------------------------------------- results

function show(result) {
  state.result = result;
  state.rows = result.detections.map((d, i) => ({ ...d, index: i }));
  state.sort = { key: "start_time", dir: 1 };
  $("results").hidden = false;
  const species = new Set(result.detections.map((d) => d.code)).size;
  $("summary").textContent = `${result.file}: ${result.duration.toFixed(1)} s, ${result.windows} windows, ${result.detections.length} detections of ${species} species (model ${result.model}, minimum confidence ${result.options.min_confidence}).`;
  drawFigure(result);
  drawTable();
  offerDownloads(result);
}

function percent(seconds, duration) { return `${(100 * seconds) / Math.max(duration, 1e-9)}%`; }

function drawFigure(result) {
  const image = $("spectrogram-image");
  if (result.spectrogram) {
    image.src = result.spectrogram.png;
    $("fmax-label").textContent = `${(result.spectrogram.fmax / 1000).toFixed(1)} kHz`;
  }
  const duration = result.duration;
  const timeline = $("timeline");
  timeline.textContent = "";
  const order = new Map();
  for (const d of result.detections) order.set(d.code, Math.max(order.get(d.code) || 0, d.confidence));
  const codes = [...order.keys()].sort((a, b) => order.get(b) - order.get(a));
  const lanes = new Map();
  for (const code of codes) {
    const lane = document.createElement("div");
    lane.className = "lane";
    lane.dataset.code = code;
    const label = document.createElement("span");
    label.className = "lane-label";
    const first = result.detections.find((d) => d.code === code);
    label.textContent = first.common_name || code;
    label.title = `${code}${first.scientific_name ? " · " + first.scientific_name : ""}`;
    lane.appendChild(label);
    timeline.appendChild(lane);
    lanes.set(code, lane);
  }
  result.detections.forEach((d, i) => {
    const box = document.createElement("div");
    box.className = "det-box";
    box.dataset.index = String(i);
    box.style.left = percent(d.start_time, duration);
    box.style.width = percent(Math.min(d.end_time, duration) - d.start_time, duration);
    box.style.opacity = String(0.35 + 0.65 * d.confidence);
    box.textContent = `${d.code} ${d.confidence.toFixed(2)}`;
    box.title = `${d.common_name || d.code} ${d.start_time}–${d.end_time} s: ${d.confidence.toFixed(3)}`;
    box.addEventListener("click", () => play(d, i));
    box.addEventListener("mouseenter", () => mark(d));
    box.addEventListener("mouseleave", () => { $("window-mark").hidden = true; });
    lanes.get(d.code).appendChild(box);
  });
  const axis = $("axis");
  axis.textContent = "";
  const step = niceStep(duration / 8);
  for (let t = 0; t <= duration + 1e-9; t += step) {
    const tick = document.createElement("span");
    tick.className = "tick";
    tick.style.left = percent(t, duration);
    tick.textContent = duration >= 120 ? `${Math.floor(t / 60)}:${String(Math.round(t % 60)).padStart(2, "0")}` : `${+t.toFixed(2)} s`;
    axis.appendChild(tick);
  }
}

function niceStep(raw) {
  for (const s of [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]) if (s >= raw) return s;
  return 7200;
}

function mark(d) {
  const box = $("window-mark");
  box.style.left = percent(d.start_time, state.result.duration);
  box.style.width = percent(Math.min(d.end_time, state.result.duration) - d.start_time, state.result.duration);
  box.hidden = false;
}

function drawTable() {
  const { key, dir } = state.sort;
  const numeric = ["start_time", "end_time", "confidence"].includes(key);
  const rows = [...state.rows].sort((a, b) => {
    const order = numeric ? a[key] - b[key] : String(a[key]).localeCompare(String(b[key]));
    return dir * order || a.index - b.index;
  });
  for (const th of document.querySelectorAll("#detections th[data-key]")) {
    th.setAttribute("aria-sort", th.dataset.key === key ? (dir > 0 ? "ascending" : "descending") : "none");
  }
  const body = document.querySelector("#detections tbody");
  body.textContent = "";
  for (const d of rows) {
    const tr = document.createElement("tr");
    tr.dataset.index = String(d.index);
    const cells = [[d.start_time, true], [d.end_time, true], [d.code], [d.common_name], [d.scientific_name], [d.confidence.toFixed(4), true]];
    for (const [value, number] of cells) {
      const td = document.createElement("td");
      td.textContent = String(value);
      if (number) td.className = "number";
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "play";
    button.textContent = "▶ Play";
    button.addEventListener("click", () => play(d, d.index));
    td.appendChild(button);
    tr.appendChild(td);
    body.appendChild(tr);
  }
  $("empty").hidden = rows.length > 0;
}

for (const th of document.querySelectorAll("#detections th[data-key]")) {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : key === "confidence" ? -1 : 1 };
    drawTable();
  });
}

// ---------------------------------------------------------------------------------------------- playing

function play(d, index) {
  const player = $("player");
  for (const el of document.querySelectorAll(".active")) el.classList.remove("active");
  for (const el of document.querySelectorAll(`[data-index="${index}"]`)) el.classList.add("active");
  mark(d);
  state.stopAt = d.end_time;
  player.currentTime = d.start_time;
  player.play().catch((err) => setStatus(`Cannot play: ${err.message}`, true));
}

// "timeupdate" comes only every ~250 ms: while a window plays, check every 40 ms whether it has reached its end.
$("player").addEventListener("playing", () => {
  clearInterval(state.stopTimer);
  if (state.stopAt !== null) state.stopTimer = setInterval(stopAtEnd, 40);
});

function stopAtEnd() {
  const player = $("player");
  if (state.stopAt !== null && player.currentTime >= state.stopAt) {
    player.pause();
    state.stopAt = null;
  }
  if (state.stopAt === null || player.paused) clearInterval(state.stopTimer);
}

$("player").addEventListener("timeupdate", () => {
  const player = $("player");
  stopAtEnd();
  if (state.result) {
    const head = $("playhead");
    head.style.left = percent(player.currentTime, state.result.duration);
    head.hidden = false;
  }
});
$("player").addEventListener("seeking", () => {
  if (state.stopAt !== null && Math.abs($("player").currentTime - state.stopAt) > 60) state.stopAt = null;
});

// ---------------------------------------------------------------------------------------------- downloads

function offerDownloads(result) {
  for (const url of state.downloads) URL.revokeObjectURL(url);
  state.downloads = [];
  const stem = result.file.includes(".") ? result.file.slice(0, result.file.lastIndexOf(".")) : result.file;
  const offer = (id, text, type, name) => {
    const link = $(id);
    if (text === null || text === undefined) { link.hidden = true; return; }
    const url = URL.createObjectURL(new Blob([text], { type }));
    state.downloads.push(url);
    link.href = url;
    link.download = name;
    link.hidden = false;
  };
  const tables = result.tables || {};
  offer("download-csv", tables.csv, "text/csv", `${stem}.detections.csv`);
  offer("download-raven", tables.raven, "text/plain", `${stem}.selections.txt`);
}

loadModel().catch((err) => { $("model-line").textContent = `The server did not answer: ${err.message}`; });

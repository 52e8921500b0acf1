/// The page `GET /` serves: everything inline (no CDN, no external file), so it works on a machine
/// with no network. A photo goes to POST /v1/predict; the camera's frames go over the WebSocket
/// /v1/stream one at a time (the next when the last is answered), and each answer is drawn over the
/// frame it belongs to. `window.fer` holds the latest state, for people and for the browser test.
enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>swift-fer</title>
<style>
  :root { --bg: #f6f7f9; --fg: #1d2330; --muted: #667085; --card: #fff; --line: #e4e7ec; --accent: #2f6fed; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
  header { padding: 18px 24px; background: var(--card); border-bottom: 1px solid var(--line); display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
  header h1 { margin: 0; font-size: 20px; }
  header span { color: var(--muted); font-size: 13px; }
  main { display: grid; grid-template-columns: minmax(320px, 1fr) 320px; gap: 20px; padding: 20px 24px; max-width: 1200px; }
  @media (max-width: 860px) { main { grid-template-columns: 1fr; } }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px; }
  .controls { display: flex; gap: 10px; flex-wrap: wrap; margin-bottom: 12px; }
  button, label.button { font: inherit; border: 1px solid var(--line); background: var(--card); border-radius: 8px; padding: 8px 14px; cursor: pointer; }
  button.primary, label.button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  button:disabled { opacity: .5; cursor: default; }
  input[type=file] { display: none; }
  #view { width: 100%; background: #101828; border-radius: 8px; display: block; min-height: 240px; }
  #status { color: var(--muted); margin-top: 10px; min-height: 1.4em; }
  #status.error { color: #b42318; }
  .face { border-top: 1px solid var(--line); padding: 10px 0; }
  .face:first-child { border-top: none; padding-top: 0; }
  .face h3 { margin: 0 0 6px; font-size: 15px; display: flex; justify-content: space-between; }
  .bar { display: grid; grid-template-columns: 70px 1fr 48px; align-items: center; gap: 8px; font-size: 13px; margin: 2px 0; }
  .bar .track { background: #eef0f3; border-radius: 4px; height: 10px; overflow: hidden; }
  .bar .fill { height: 100%; border-radius: 4px; }
  .bar .pct { text-align: right; color: var(--muted); font-variant-numeric: tabular-nums; }
  #empty { color: var(--muted); }
  video { display: none; }
</style>
</head>
<body>
<header><h1>swift-fer</h1><span id="model">facial expression recognition</span></header>
<main>
  <section class="card">
    <div class="controls">
      <label class="button primary" for="photo">Choose a photo</label>
      <input id="photo" type="file" accept="image/*">
      <button id="start">Start camera</button>
      <button id="stop" disabled>Stop camera</button>
    </div>
    <canvas id="view" width="640" height="480"></canvas>
    <video id="video" autoplay playsinline muted></video>
    <div id="status">Choose a photo, or start the camera.</div>
  </section>
  <aside class="card">
    <div id="faces"><div id="empty">No faces yet.</div></div>
  </aside>
</main>
<script>
"use strict";
const colors = { Angry: "#dc2828", Disgust: "#289628", Fear: "#a03ca0", Happy: "#f5b400", Sad: "#1e78c8", Surprise: "#ff8c00", Neutral: "#8c8c8c" };
const view = document.getElementById("view"), ctx = view.getContext("2d");
const statusLine = document.getElementById("status"), facesPanel = document.getElementById("faces");
const video = document.getElementById("video");
const capture = document.createElement("canvas");
window.fer = { mode: "idle", frames: 0, fps: 0, faces: [], emotion: null, error: null };

function say(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
  window.fer.error = isError ? text : null;
}

function color(name) { return colors[name] || "#2f6fed"; }

// Draws `source` (an image, a canvas or a video frame) with the boxes and labels of `faces`.
function draw(source, width, height, faces) {
  view.width = width; view.height = height;
  ctx.drawImage(source, 0, 0, width, height);
  const scale = Math.max(1, width / 640);
  ctx.lineWidth = 3 * scale;
  ctx.font = `${Math.round(16 * scale)}px system-ui, sans-serif`;
  faces.forEach((f, i) => {
    const b = f.box, c = color(f.emotion);
    ctx.strokeStyle = c;
    ctx.strokeRect(b.x, b.y, b.width, b.height);
    const label = `${i + 1}: ${f.emotion} ${Math.round(100 * f.confidence)}%`;
    const w = ctx.measureText(label).width + 10 * scale, h = 22 * scale;
    const y = b.y > h ? b.y - h : b.y + b.height;
    ctx.fillStyle = c;
    ctx.fillRect(b.x - ctx.lineWidth / 2, y, w, h);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, b.x + 4 * scale, y + h - 6 * scale);
  });
}

// The panel: one block per face with a bar per class.
function showFaces(faces) {
  window.fer.faces = faces;
  window.fer.emotion = faces.length ? faces[0].emotion : null;
  if (!faces.length) { facesPanel.innerHTML = '<div id="empty">No face found.</div>'; return; }
  facesPanel.innerHTML = "";
  faces.forEach((f, i) => {
    const block = document.createElement("div");
    block.className = "face";
    block.id = `face${i}`;
    const title = document.createElement("h3");
    title.innerHTML = `<span class="emotion"></span><span class="pct"></span>`;
    title.querySelector(".emotion").textContent = `Face ${i + 1}: ${f.emotion}`;
    title.querySelector(".pct").textContent = `${(100 * f.confidence).toFixed(1)}%`;
    block.appendChild(title);
    Object.entries(f.probabilities).sort((a, b) => b[1] - a[1]).forEach(([name, p]) => {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = `<span></span><div class="track"><div class="fill"></div></div><span class="pct"></span>`;
      row.children[0].textContent = name;
      row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      row.querySelector(".fill").style.background = color(name);
      row.querySelector(".pct").textContent = `${(100 * p).toFixed(1)}%`;
      block.appendChild(row);
    });
    facesPanel.appendChild(block);
  });
}

function summary(faces, extra) {
  const n = faces.length;
  const what = n ? faces.map(f => f.emotion).join(", ") : "no face";
  return `${n} face${n === 1 ? "" : "s"}: ${what}${extra ? " · " + extra : ""}`;
}

// A photo: POST /v1/predict, then draw it with its faces.
document.getElementById("photo").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  stopCamera();
  window.fer.mode = "photo";
  say(`Reading ${file.name}...`);
  try {
    const response = await fetch("/v1/predict", { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file });
    const result = await response.json();
    if (!response.ok) { say(result.error || `HTTP ${response.status}`, true); return; }
    const bitmap = await createImageBitmap(file);
    draw(bitmap, result.width, result.height, result.faces);
    showFaces(result.faces);
    window.fer.frames += 1;
    say(summary(result.faces, `${result.milliseconds.toFixed(0)} ms`));
  } catch (e) {
    say(`Could not read the photo: ${e}`, true);
  }
  event.target.value = "";
});

// The camera: one frame in flight at a time over the WebSocket.
let stream = null, socket = null, running = false, sentAt = [], pending = null;

async function startCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    say(`The camera is not available: ${e.message || e}`, true);
    return;
  }
  video.srcObject = stream;
  await video.play();
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`;
  socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => { running = true; window.fer.mode = "camera"; say("Camera on."); sendFrame(); };
  socket.onclose = () => { if (running) say("The connection to the server closed.", true); running = false; };
  socket.onerror = () => say("WebSocket error.", true);
  socket.onmessage = (message) => {
    const result = JSON.parse(message.data);
    const frame = pending; pending = null;
    if (result.error) { say(result.error, true); }
    else {
      sentAt.push(performance.now());
      sentAt = sentAt.filter(t => performance.now() - t < 2000);
      window.fer.fps = sentAt.length / 2;
      window.fer.frames += 1;
      if (frame) draw(frame, frame.width, frame.height, result.faces);
      showFaces(result.faces);
      say(summary(result.faces, `${window.fer.fps.toFixed(1)} FPS · ${result.milliseconds.toFixed(0)} ms`));
    }
    if (running) requestAnimationFrame(sendFrame);
  };
  document.getElementById("start").disabled = true;
  document.getElementById("stop").disabled = false;
}

function sendFrame() {
  if (!running || !video.videoWidth) { if (running) setTimeout(sendFrame, 50); return; }
  const scale = Math.min(1, 640 / video.videoWidth);
  capture.width = Math.round(video.videoWidth * scale);
  capture.height = Math.round(video.videoHeight * scale);
  capture.getContext("2d").drawImage(video, 0, 0, capture.width, capture.height);
  const frame = document.createElement("canvas");
  frame.width = capture.width; frame.height = capture.height;
  frame.getContext("2d").drawImage(capture, 0, 0);
  capture.toBlob((blob) => {
    if (!running || !blob) return;
    pending = frame;
    blob.arrayBuffer().then(buffer => socket.send(buffer));
  }, "image/jpeg", 0.85);
}

function stopCamera() {
  running = false;
  if (socket) { socket.close(); socket = null; }
  if (stream) { stream.getTracks().forEach(t => t.stop()); stream = null; }
  if (window.fer.mode === "camera") { window.fer.mode = "idle"; say("Camera off."); }
  document.getElementById("start").disabled = false;
  document.getElementById("stop").disabled = true;
}

document.getElementById("start").addEventListener("click", startCamera);
document.getElementById("stop").addEventListener("click", stopCamera);
fetch("/v1/info").then(r => r.json()).then(info => {
  document.getElementById("model").textContent = `model ${info.model} · detector ${info.detector} · ${info.classes.join(", ")}`;
}).catch(() => {});
ctx.fillStyle = "#101828"; ctx.fillRect(0, 0, view.width, view.height);
</script>
</body>
</html>
"""#
}

// The web demo: referring segmentation in the browser with ONNX Runtime Web (WebGPU when the
// browser has a GPU adapter, WASM otherwise). The image part of the model runs once per image, the
// text part once per expression (design.md §3.8), exactly as the Node segmenter does; tokenizer,
// letterbox, post-processing and drawing are the project's own compiled modules (/lib/...), so
// the page computes what `refseg segment` computes. Plain JavaScript: the project's tsconfig has
// no DOM types, and the page needs no build step.
//
// window.__refseg exposes the state and a segment(text) function for the browser test.

import { textEncoderFromCheckpoint } from '/lib/data/text.js';
import { letterbox } from '/lib/data/image.js';
import {
  maskFromProbability,
  patchProbabilityFromLogits,
  probabilityFromLogits,
} from '/lib/infer/postprocess.js';
import { heatmapOverlay, overlayMask, rgbToRgba, rgbaToRgb } from '/lib/infer/draw.js';

const MAX_PIXELS = 40e6; // the server's and decodeImage's default limit

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'),
  result: $('result'),
  latency: $('latency'),
  text: $('text'),
  go: $('go'),
  file: $('file'),
  drop: $('drop'),
  example: $('use-example'),
  examples: $('examples'),
  threshold: $('threshold'),
  thresholdValue: $('threshold-value'),
  overlay: $('overlay'),
  heatmap: $('heatmap'),
};

/** Everything the page knows; also what the browser test reads. */
const state = {
  ready: false,
  error: null,
  ep: null,
  manifest: null,
  tokenizer: null,
  /** Whether the model outputs ReSTR's patch_logits (the heatmap). */
  hasPatches: false,
  sessions: null,
  /** { rgb, box, tensor, features, encodeMs, name } for the current image. */
  image: null,
  /** The last result, kept so the threshold slider redraws without running the model. */
  last: null,
  /** The mask drawn last. */
  mask: null,
};
window.__refseg = state;

function setStatus(text, error = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle('error', error);
}

const ms = (x) => `${x.toFixed(1)} ms`;

// ---------- model ----------

/** WebGPU when the browser exposes an adapter, WASM otherwise (headless, no GPU, older browsers). */
async function providers() {
  try {
    if (navigator.gpu && (await navigator.gpu.requestAdapter())) return ['webgpu'];
  } catch {
    // no adapter: fall through
  }
  return ['wasm'];
}

async function loadModel() {
  const t0 = performance.now();
  const manifest = await (await fetch('/model/manifest.json')).json();
  state.manifest = manifest;
  // The same function the Node segmenter uses: word vocabulary (ReSTR) or SentencePiece (Shared-RIS).
  state.tokenizer = textEncoderFromCheckpoint(manifest.vocab, manifest.maxTokens, 'model');
  ui.threshold.value = String(manifest.threshold);
  ui.thresholdValue.textContent = manifest.threshold.toFixed(2);

  let ort;
  try {
    ort = await import(manifest.ort);
  } catch {
    throw new Error(
      'onnxruntime-web is not installed on the server (npm install onnxruntime-web), so the model cannot run here.',
    );
  }
  ort.env.wasm.wasmPaths = '/ort/';
  // Threads need SharedArrayBuffer, which needs cross-origin isolation (the demo server sends COOP/COEP).
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  state.ort = ort;

  const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
  const urls = manifest.parts.full
    ? { full: manifest.parts.full }
    : { image: manifest.parts.image, text: manifest.parts.text };
  const models = Object.fromEntries(
    await Promise.all(Object.entries(urls).map(async ([k, u]) => [k, await bytes(u)])),
  );
  const create = async (ep) => {
    const opts = { executionProviders: ep, graphOptimizationLevel: 'all' };
    const out = {};
    for (const [k, b] of Object.entries(models)) out[k] = await ort.InferenceSession.create(b, opts);
    return out;
  };
  let ep = await providers();
  try {
    state.sessions = await create(ep);
  } catch (e) {
    if (ep[0] !== 'webgpu') throw e;
    console.warn('WebGPU session failed, using WASM:', e);
    ep = ['wasm'];
    state.sessions = await create(ep);
  }
  state.ep = ep[0];
  state.hasPatches = (state.sessions.text ?? state.sessions.full).outputNames.includes('patch_logits');
  $('heatmap-figure').hidden = !state.hasPatches;
  const mib = Object.values(models).reduce((a, b) => a + b.length, 0) / 2 ** 20;
  return { ms: performance.now() - t0, mib };
}

// ---------- images ----------

/** Decodes a Blob to RGB: EXIF orientation applied, transparency over white (as decodeImage does). */
async function decode(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  const { width, height } = bitmap;
  if (width * height > MAX_PIXELS)
    throw new Error(`the image is ${width}×${height}, over ${MAX_PIXELS / 1e6} MP`);
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return rgbaToRgb(ctx.getImageData(0, 0, width, height).data, width, height);
}

function paint(canvas, rgb) {
  canvas.width = rgb.width;
  canvas.height = rgb.height;
  canvas.getContext('2d').putImageData(new ImageData(rgbToRgba(rgb), rgb.width, rgb.height), 0, 0);
}

/** Letterboxes and (split models) runs the image part once; every expression then reuses it. */
async function setImage(rgb, name) {
  const { manifest, ort, sessions } = state;
  const S = manifest.imageSize;
  const t0 = performance.now();
  const boxed = letterbox(rgb, S, manifest.normalization);
  const t1 = performance.now();
  const tensor = new ort.Tensor('float32', boxed.tensor, [1, 3, S, S]);
  const features = sessions.image ? await sessions.image.run({ image: tensor }) : null;
  const t2 = performance.now();
  state.image = {
    rgb,
    box: boxed,
    tensor,
    features,
    name,
    preprocessMs: t1 - t0,
    encodeMs: sessions.image ? t2 - t1 : 0,
    used: false,
  };
  state.last = null;
  paint(ui.overlay, rgb);
  paint(ui.heatmap, rgb);
  ui.result.textContent = `${name}: ${rgb.width}×${rgb.height}`;
  ui.latency.textContent = `image: letterbox ${ms(t1 - t0)}${sessions.image ? `, image encoder ${ms(t2 - t1)} (once per image)` : ''}`;
}

// ---------- segmentation ----------

async function segment(text) {
  if (!state.ready) throw new Error('the model is not loaded');
  if (!state.image) throw new Error('no image');
  if (!text.trim()) throw new Error('type an expression');
  const { manifest, ort, sessions, tokenizer, image } = state;
  const L = manifest.maxTokens;
  const t0 = performance.now();
  const words = new ort.Tensor('int64', tokenizer.encode(text), [1, L]);
  const feeds = sessions.text
    ? { ...image.features, [manifest.tokenInput]: words }
    : { image: image.tensor, [manifest.tokenInput]: words };
  const out = await (sessions.text ?? sessions.full).run(feeds);
  const t1 = performance.now();
  const { width, height } = image.rgb;
  const probability = probabilityFromLogits(await out.mask_logits.getData(), image.box, width, height);
  const patch = out.patch_logits ? patchProbabilityFromLogits(await out.patch_logits.getData()) : null;
  const t2 = performance.now();
  // The first expression on a fresh image pays for its encoding; later ones only for the text part.
  const imageMs = image.used ? 0 : image.preprocessMs + image.encodeMs;
  image.used = true;
  state.last = { text, probability, patch, timings: { image: imageMs, text: t1 - t0, postprocess: t2 - t1 } };
  return render();
}

/** Thresholds the last probability map and draws it; returns a summary (also for the test). */
function render() {
  const { last, image } = state;
  if (!last) return null;
  const t0 = performance.now();
  const threshold = Number(ui.threshold.value);
  const { width, height } = image.rgb;
  const { mask, area, score } = maskFromProbability(last.probability, width, height, threshold);
  state.mask = mask; // { width, height, data }: what the overlay shows (the browser test compares it)
  paint(ui.overlay, overlayMask(image.rgb, mask));
  if (last.patch) paint(ui.heatmap, heatmapOverlay(image.rgb, last.patch, image.box));
  const draw = performance.now() - t0;
  const t = last.timings;
  ui.result.textContent = `“${last.text}”: ${area} px (${((100 * area) / (width * height)).toFixed(1)}% of the image), score ${score.toFixed(3)}`;
  ui.latency.textContent =
    `${state.ep.toUpperCase()} · ${t.image ? `image ${ms(t.image)} + ` : 'image cached · '}text ${ms(t.text)} + post ${ms(t.postprocess)} + draw ${ms(draw)}` +
    ` = ${ms(t.image + t.text + t.postprocess + draw)}`;
  let sum = 0;
  for (let i = 0; i < last.probability.length; i++) sum += last.probability[i];
  return {
    text: last.text,
    width,
    height,
    area,
    score,
    threshold,
    probabilityMean: sum / last.probability.length,
    ep: state.ep,
    timings: { ...t, draw },
  };
}
state.segment = segment;

async function run(text) {
  ui.go.disabled = true;
  try {
    await segment(text);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    ui.go.disabled = false;
  }
}

// ---------- wiring ----------

async function useBlob(blob, name) {
  try {
    await setImage(await decode(blob), name);
    ui.examples.replaceChildren();
    setStatus(`Model ready (${state.ep.toUpperCase()}). Type an expression.`);
  } catch (e) {
    setStatus(`Cannot use ${name}: ${e.message}`, true);
  }
}

async function useExample() {
  const { example } = state.manifest;
  const [png, json] = await Promise.all([fetch(example.image), fetch(example.expressions)]);
  if (!png.ok) return setStatus('The example image is not available.', true);
  await setImage(await decode(await png.blob()), 'example scene');
  const expressions = json.ok ? (await json.json()).expressions : [];
  ui.examples.replaceChildren(
    ...expressions.map((e) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = e.text;
      b.addEventListener('click', () => {
        ui.text.value = e.text;
        void run(e.text);
      });
      return b;
    }),
  );
}

ui.example.addEventListener('click', () => void useExample());
ui.file.addEventListener('change', () => {
  const f = ui.file.files?.[0];
  if (f) void useBlob(f, f.name);
});
ui.drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  ui.drop.classList.add('over');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
ui.drop.addEventListener('drop', (e) => {
  e.preventDefault();
  ui.drop.classList.remove('over');
  const f = e.dataTransfer?.files?.[0];
  if (f) void useBlob(f, f.name);
});
$('query').addEventListener('submit', (e) => {
  e.preventDefault();
  void run(ui.text.value);
});
ui.threshold.addEventListener('input', () => {
  ui.thresholdValue.textContent = Number(ui.threshold.value).toFixed(2);
  render();
});

(async () => {
  try {
    const { ms: loadMs, mib } = await loadModel();
    state.ready = true;
    ui.text.disabled = false;
    ui.go.disabled = false;
    const m = state.manifest;
    setStatus(
      `${m.kind} ${m.imageSize} px, ${mib.toFixed(1)} MiB, loaded in ${ms(loadMs)} on ${state.ep.toUpperCase()}. Type an expression.`,
    );
    await useExample();
  } catch (e) {
    state.error = e.message;
    setStatus(e.message, true);
  }
})();

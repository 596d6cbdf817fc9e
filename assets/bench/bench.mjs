// Archscope's browser bench: one ONNX model per precision, run by onnxruntime-web in this page, with the parity
// check before any latency. One page load measures one setup: ONNX Runtime Web fixes its WASM thread count when
// the runtime starts, so wasm-1, wasm-N and webgpu are three loads of this module (bench.html?setup=...).
// wasm-1 and wasm-N load the WASM-only build (ort.wasm.min.mjs); webgpu loads the WebGPU build
// (ort.webgpu.min.mjs), fp32 only: ONNX Runtime Web's WebGPU int8 is known to give wrong results.
//
// Protocol, per precision:
//   cold start = download of the .onnx + session creation + the first run, each kept apart;
//   parity     = the 32 real inputs of core/deploy (float32, little-endian, N x C x H x W) against PyTorch eager's
//                logits: the max abs difference and the top-1 agreement. fp32 over the tolerance: no latency;
//   latency    = warm runs of input 0 until maxRuns or maxSeconds, whichever is first: p10, p50, p90 (ms).
export const ORT_VERSION = "1.30.0";
export const WEBGPU_INT8 = "not run on WebGPU: ONNX Runtime Web's WebGPU int8 is known to give wrong results " +
                           "(fp32 only here)";

// the adapter WebGPU gives this page, or why there is none (a sentence)
async function webgpuAdapter() {
  if (!self.isSecureContext) return { why: "WebGPU needs a secure context (HTTPS, or localhost); this page is not one" };
  if (!navigator.gpu) return { why: "this browser has no WebGPU (navigator.gpu is missing)" };
  let adapter = null;
  try { adapter = await navigator.gpu.requestAdapter(); } catch (err) { return { why: "requestAdapter failed: " + err }; }
  if (!adapter) return { why: "this browser gives no WebGPU adapter (no usable GPU, or WebGPU is switched off)" };
  const info = adapter.info || {};
  return { adapter: { vendor: info.vendor || "", architecture: info.architecture || "", device: info.device || "",
                      description: info.description || "", fallback: adapter.isFallbackAdapter === true } };
}

function quantile(sorted, q) {
  if (!sorted.length) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

async function floats(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Float32Array(await res.arrayBuffer());
}

export function device() {
  return {
    user_agent: navigator.userAgent,
    hardware_concurrency: navigator.hardwareConcurrency || null,
    device_memory_gb: navigator.deviceMemory || null,
    cross_origin_isolated: self.crossOriginIsolated === true,
    secure_context: self.isSecureContext === true,
  };
}

// cfg: {setup (the result's name), backend ("wasm" or "webgpu"), threads ("1", or "N": every core, up to
//       maxThreads), maxThreads, precisions: {fp32: url, int8: url}, inputs, reference (or references: {fp32: url, int8:
//       url}, one per precision), labels (optional), shape: [N, C, H, W], outputLen (values per input), classifier
//       (top-1 agreement applies), tolerance, maxRuns, maxSeconds};
//       progress(text, fraction) is called as it goes.
export async function run(cfg, progress = () => {}) {
  const info = device();
  const gpu = cfg.backend === "webgpu";
  const cap = Math.max(1, Math.min(info.hardware_concurrency || 1, cfg.maxThreads || 8));
  // "N": every core (at least 2, else it says so); a count: exactly that many, or it says why not
  const asked = cfg.threads === "N" ? Math.max(2, cap) : Math.max(1, parseInt(cfg.threads || "1", 10) || 1);
  const many = asked > 1;
  // webgpu: one WASM thread for whatever the GPU does not run (shape ops, the odd kernel)
  const wanted = Math.min(asked, cap);
  const out = { setup: cfg.setup, ort_version: ORT_VERSION, ...info, threads: wanted, results: [] };
  if (gpu) {
    const found = await webgpuAdapter();
    if (!found.adapter) { out.error = found.why; return out; }
    out.webgpu_adapter = found.adapter;
  }
  if (many && !info.cross_origin_isolated) {
    out.error = cfg.setup + " needs a cross-origin isolated page (COOP same-origin + COEP require-corp); this one is not, " +
                "so the browser allows one WASM thread";
    return out;
  }
  if (many && wanted < asked) {
    out.error = cfg.setup + " needs at least " + asked + " cores; this browser reports " + (info.hardware_concurrency || 1);
    return out;
  }
  const ort = gpu ? await import("../ort/ort.webgpu.min.mjs") : await import("../ort/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = wanted;
  ort.env.wasm.wasmPaths = cfg.ortBase || new URL("../ort/", import.meta.url).href;
  ort.env.logLevel = "error";
  const [n, c, h, w] = cfg.shape;
  const per = c * h * w;
  progress("reading the parity inputs", 0);
  const inputs = await floats(cfg.inputs);
  const shared = cfg.reference ? await floats(cfg.reference) : null;
  // optional: the true class of each input (float32 too), for a top-1 of the browser's own predictions
  const labels = cfg.labels ? await floats(cfg.labels) : null;
  const precisions = Object.entries(cfg.precisions);
  for (const [pi, [precision, url]] of precisions.entries()) {
    const step = (text, f) => progress(`${precision}: ${text}`, (pi + f) / precisions.length);
    const row = { precision };
    out.results.push(row);
    if (gpu && precision !== "fp32") { row.error = WEBGPU_INT8; continue; }
    try {
      step("downloading the model", 0);
      let t = performance.now();
      const res = await fetch(url);
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      row.download_ms = performance.now() - t;
      row.model_bytes = bytes.byteLength;
      step("creating the session", 0.05);
      t = performance.now();
      const session = await ort.InferenceSession.create(bytes, { executionProviders: [gpu ? "webgpu" : "wasm"],
                                                                 graphOptimizationLevel: "all" });
      row.session_ms = performance.now() - t;
      const name = session.inputNames[0];
      const one = (i) => new ort.Tensor("float32", inputs.subarray(i * per, (i + 1) * per), [1, c, h, w]);
      t = performance.now();
      let first = await session.run({ [name]: one(0) });
      row.first_run_ms = performance.now() - t;
      row.cold_start_ms = row.download_ms + row.session_ms + row.first_run_ms;
      // parity on every input, against PyTorch eager, or against the server's own ONNX Runtime for this precision
      const reference = cfg.references && cfg.references[precision] ? await floats(cfg.references[precision]) : shared;
      let maxAbs = 0, agree = 0, correct = 0;
      for (let i = 0; i < n; i++) {
        step(`parity ${i + 1}/${n}`, 0.1 + 0.3 * i / n);
        const got = i === 0 ? first : await session.run({ [name]: one(i) });
        const logits = got[session.outputNames[0]].data;
        if (logits.length !== cfg.outputLen) throw new Error(`output of ${logits.length} values, expected ${cfg.outputLen}`);
        const ref = reference.subarray(i * cfg.outputLen, (i + 1) * cfg.outputLen);
        let a = 0, b = 0;
        for (let k = 0; k < cfg.outputLen; k++) {
          const d = Math.abs(logits[k] - ref[k]);
          maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
          if (logits[k] > logits[a]) a = k;
          if (ref[k] > ref[b]) b = k;
        }
        if (a === b) agree++;
        if (labels && a === labels[i]) correct++;
      }
      first = null;
      row.parity = { max_abs_diff: Number.isFinite(maxAbs) ? maxAbs : null,
                     top1_agreement: cfg.classifier ? agree / n : null, inputs: n };
      if (labels) row.top1 = correct / n;
      if (precision === "fp32" && !(Number.isFinite(maxAbs) && maxAbs <= cfg.tolerance)) {
        row.refused = `fp32 parity ${maxAbs.toExponential(2)} is over the tolerance ${cfg.tolerance}: no latency ` +
                      "is shown for a model that does not compute what PyTorch computes";
        await session.release();
        continue;
      }
      // warm runs of input 0
      const x = one(0);
      const times = [];
      const start = performance.now();
      while (times.length < cfg.maxRuns && performance.now() - start < cfg.maxSeconds * 1000) {
        const s = performance.now();
        await session.run({ [name]: x });
        times.push(performance.now() - s);
        if (times.length % 5 === 0) step(`timing: ${times.length} runs`, 0.4 + 0.6 * times.length / cfg.maxRuns);
      }
      times.sort((p, q) => p - q);
      row.runs = times.length;
      row.p10_ms = quantile(times, 0.1);
      row.p50_ms = quantile(times, 0.5);
      row.p90_ms = quantile(times, 0.9);
      await session.release();
    } catch (err) {
      row.error = String((err && err.message) || err).split("\n")[0].slice(0, 300);
    }
  }
  progress("done", 1);
  return out;
}

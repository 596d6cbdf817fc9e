export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const status = parentElement.querySelector(".bench-status");
  const show = (text) => { if (status) status.textContent = text; };
  if (!data || !data.token) return;
  const runs = (window.__archscopeBenches = window.__archscopeBenches || {});
  if (runs[data.token]) { show(runs[data.token].text); return; }     // a rerender: the bench already runs
  const state = (runs[data.token] = { text: "starting…" });
  const say = (text) => { state.text = text; show(text); };
  (async () => {
    const results = [];
    for (const [bi, config] of data.configs.entries()) for (const setup of data.setups) {
      const where = data.configs.length > 1 ? `model ${bi + 1} of ${data.configs.length}, ` : "";
      say(`${where}${setup}: loading the runtime`);
      const frame = document.createElement("iframe");
      frame.style.cssText = "position:absolute;width:1px;height:1px;border:0;opacity:0;pointer-events:none";
      frame.src = `${data.bench}?${data.queries[setup]}&config=${encodeURIComponent(config)}`;
      document.body.appendChild(frame);
      const started = performance.now();
      const result = await new Promise((resolve) => {
        const tick = setInterval(() => {
          try {
            const w = frame.contentWindow;
            const line = w && w.document && w.document.getElementById("status");
            if (line && line.textContent) say(`${where}${setup}: ${line.textContent}`);
            if (w && w.__result !== undefined) { clearInterval(tick); resolve(w.__result); }
            else if (performance.now() - started > data.timeoutMs) {
              clearInterval(tick); resolve({ setup, error: "timed out in this browser" });
            }
          } catch (err) { clearInterval(tick); resolve({ setup, error: String(err).slice(0, 200) }); }
        }, 250);
      });
      frame.remove();
      results.push({ bench: bi, result });
    }
    say("done: sending the figures to the server");
    setTriggerValue("result", JSON.stringify({ token: data.token, results }));
  })();
}

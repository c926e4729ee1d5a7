(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const CROPS = JSON.parse(document.getElementById("report-crops").textContent);
  const $ = (id) => document.getElementById(id);
  const state = { ds: 0, image: -1, logx: false };
  const ds = () => DATA.datasets[state.ds];
  const fmt = (v, d) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(d));
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  function option(select, value, text) {
    const o = document.createElement("option");
    o.value = value; o.textContent = text; select.appendChild(o);
  }

  function hover(curve, cols, i) {
    const lines = ["<b>" + esc(curve.label) + "</b>"];
    if (cols.setting && cols.setting[i] !== null) lines.push("setting " + cols.setting[i]);
    lines.push(fmt(cols.bpp[i], 4) + " bpp");
    for (const m of ds().metrics) if (cols[m]) lines.push(DATA.labels[m] + " " + fmt(cols[m][i], DATA.digits[m]));
    if (cols.encode_s && cols.encode_s[i] !== null)
      lines.push("encode " + fmt(cols.encode_s[i] * 1000, 1) + " ms, decode " + fmt(cols.decode_s[i] * 1000, 1) + " ms");
    return lines.join("<br>");
  }

  // The columns of a curve under the current selection: its mean curve, or the selected image's points.
  function columns(curve) {
    if (state.image < 0) return curve.mean;
    if (!curve.pts) return null;
    const keep = [];
    curve.pts.img.forEach((v, i) => { if (v === state.image) keep.push(i); });
    const out = {};
    for (const k in curve.pts) out[k] = keep.map((i) => curve.pts[k][i]);
    return out;
  }

  function traces(y, scale) {
    const out = [];
    for (const c of ds().curves) {
      const cols = columns(c);
      if (!cols || !cols[y]) continue;
      const idx = cols.bpp.map((_, i) => i).filter((i) => cols[y][i] !== null && cols.bpp[i] !== null);
      if (!idx.length) continue;
      const trace = {
        type: "scatter", mode: "lines+markers", name: c.label, legendgroup: c.label,
        x: idx.map((i) => cols.bpp[i]), y: idx.map((i) => cols[y][i] * scale),
        text: idx.map((i) => hover(c, cols, i)), hoverinfo: "text",
        line: { color: c.color, dash: c.source === "reference" ? "dash" : "solid", width: 1.5 },
        marker: { size: 5 },
      };
      const low = cols[y + "_min"], high = cols[y + "_max"];  // spread of repeated timings (--timing-repeats)
      if (low && high) {
        const gap = (bound, sign) => idx.map((i) => (bound[i] === null ? null : sign * (bound[i] - cols[y][i]) * scale));
        trace.error_y = { type: "data", symmetric: false, array: gap(high, 1), arrayminus: gap(low, -1),
                          color: c.color, thickness: 1, width: 3 };
      }
      out.push(trace);
    }
    if (state.image < 0) {
      for (const t of ds().targets) {
        if (!t[y]) continue;
        const idx = t.target.map((_, i) => i).filter((i) => t[y][i] !== null);
        if (!idx.length) continue;
        out.push({
          type: "scatter", mode: "markers", name: t.label + " (rate-targeted)", legendgroup: t.label, showlegend: false,
          x: idx.map((i) => t.bpp[i]), y: idx.map((i) => t[y][i] * scale), hoverinfo: "text",
          text: idx.map((i) => "<b>" + esc(t.label) + "</b><br>target " + t.target[i] + " bpp (mean " + fmt(t.bpp[i], 4) +
            " bpp)<br>" + DATA.labels[y] + " " + fmt(t[y][i], DATA.digits[y]) +
            (t.n_missed[i] ? "<br>target missed on " + t.n_missed[i] + " image(s)" : "")),
          marker: { color: t.color, symbol: "diamond", size: 9, line: { width: 1, color: "#000" } },
        });
      }
    }
    return out;
  }

  function layout(title, ytitle, logy) {
    return {
      title: { text: title, font: { size: 14 }, x: 0.01, xanchor: "left" }, height: 380, hovermode: "closest",
      margin: { l: 60, r: 10, t: 40, b: 45 }, legend: { font: { size: 10 } },
      xaxis: { title: { text: "bpp" }, type: state.logx ? "log" : "linear" },
      yaxis: { title: { text: ytitle }, type: logy ? "log" : "linear" },
    };
  }

  const CONFIG = { displaylogo: false, responsive: true };
  const PLOTS = [];  // [div, y column, scale, title, y title, log y]

  function buildPlots() {
    for (const [div] of PLOTS) Plotly.purge(div);
    PLOTS.length = 0;
    for (const id of ["rd-plots", "time-plots"]) $(id).innerHTML = "";
    const add = (parent, key, scale, title, ytitle, logy) => {
      const div = document.createElement("div");
      div.className = "plot"; div.id = "plot-" + key;
      $(parent).appendChild(div);
      PLOTS.push([div, key, scale, title, ytitle, logy]);
    };
    for (const m of ds().metrics) add("rd-plots", m, 1, DATA.labels[m] + " vs bpp", DATA.labels[m], false);
    add("time-plots", "encode_s", 1000, "Encode time vs bpp", "encode time (ms)", true);
    add("time-plots", "decode_s", 1000, "Decode time vs bpp", "decode time (ms)", true);
  }

  function render() {
    const view = state.image < 0 ? "dataset mean" : ds().images[state.image];
    return Promise.all(PLOTS.map(([div, key, scale, title, ytitle, logy]) =>
      Plotly.react(div, traces(key, scale), layout(title + " (" + view + ")", ytitle, logy), CONFIG)));
  }

  function selectDataset(i) {
    state.ds = i; state.image = -1;
    const images = $("image-select");
    images.innerHTML = "";
    option(images, -1, "Dataset mean (CompressAI convention)");
    ds().images.forEach((name, j) => option(images, j, name));
    document.querySelectorAll(".ds-block").forEach((el) => el.classList.toggle("hidden", Number(el.dataset.ds) !== i));
    buildPlots();
    setupCrops();
    return render();
  }

  function setupCrops() {
    const info = CROPS.datasets[ds().name];
    const image = $("crop-image"), bpp = $("crop-bpp");
    image.innerHTML = ""; bpp.innerHTML = "";
    if (!info || !info.images.length) {
      $("crops").textContent = "No crops are stored for this dataset (the runner stores them for the first images of a run).";
      return;
    }
    info.images.forEach((im, j) => option(image, j, im.name));
    info.bpps.forEach((b) => option(bpp, b, b));
    renderCrops();
  }

  function figure(src, caption) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = "data:image/png;base64," + CROPS.blobs[src];
    img.alt = caption.split("\n")[0];
    img.addEventListener("load", () => { if ($("crop-zoom").checked) img.style.width = 2 * img.naturalWidth + "px"; });
    const cap = document.createElement("figcaption");
    cap.innerText = caption;
    fig.appendChild(img); fig.appendChild(cap);
    return fig;
  }

  function renderCrops() {
    const info = CROPS.datasets[ds().name];
    const box = $("crops");
    box.innerHTML = "";
    if (!info || !info.images.length) return;
    const im = info.images[Number($("crop-image").value)];
    box.appendChild(figure(im.original, "original\n" + im.name));
    for (const c of im.choices[$("crop-bpp").value] || []) {
      const setting = c.target !== null ? "target " + c.target + " bpp, setting " + c.setting : "setting " + c.setting;
      const metrics = ds().metrics.filter((m) => c[m] !== null && c[m] !== undefined)
        .map((m) => DATA.labels[m] + " " + fmt(c[m], DATA.digits[m])).join("\n");
      box.appendChild(figure(c.src, c.label + "\n" + setting + "\n" + fmt(c.bpp, 4) + " bpp\n" + metrics));
    }
  }

  const dsSelect = $("ds-select");
  DATA.datasets.forEach((d, i) => option(dsSelect, i, d.name));
  if (DATA.datasets.length < 2) $("ds-control").classList.add("hidden");
  dsSelect.addEventListener("change", () => selectDataset(Number(dsSelect.value)));
  $("image-select").addEventListener("change", (e) => { state.image = Number(e.target.value); render(); });
  $("logx").addEventListener("change", (e) => { state.logx = e.target.checked; render(); });
  $("crop-image").addEventListener("change", renderCrops);
  $("crop-bpp").addEventListener("change", renderCrops);
  $("crop-zoom").addEventListener("change", renderCrops);
  selectDataset(0).then(() => { document.body.dataset.ready = "1"; });
})();

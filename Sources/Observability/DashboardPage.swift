/// The live dashboard `GET /` serves: one self-contained page (inline CSS and JS, nothing fetched from elsewhere).
/// It polls `/fleet.json` (the fleet from Redis, as `codebench-worker status --json` prints it) and this worker's
/// `/metrics`, and draws throughput and latency sparklines from successive scrapes.
///
/// Everything from Redis is hostile (job ids and reasons come from payloads): the script only ever sets
/// `textContent` and numeric SVG attributes, never markup, and the page's Content-Security-Policy allows only its own
/// nonce-bearing script and style, so an injected `<img onerror=…>` could not run even if it were parsed.
enum DashboardPage {
    /// The page with `nonce` on its script and style elements.
    static func html(nonce: String) -> String {
        template.replacing("{{NONCE}}", with: nonce)
    }

    /// The Content-Security-Policy header value that goes with ``html(nonce:)``.
    static func contentSecurityPolicy(nonce: String) -> String {
        "default-src 'none'; script-src 'nonce-\(nonce)'; style-src 'nonce-\(nonce)'; connect-src 'self'; img-src 'none'; "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    }

    private static let template = #"""
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>CodeBench fleet</title>
        <style nonce="{{NONCE}}">
        body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f6f7f9; }
        h1 { font-size: 1.3em; margin: 0 0 .2em; }
        h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
        .muted { color: #6b7280; }
        .error { color: #b42318; font-weight: 600; }
        .cards { display: flex; gap: 1em; flex-wrap: wrap; }
        .card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .7em 1em; min-width: 14em; }
        .card .value { font-size: 1.6em; font-weight: 600; }
        table { border-collapse: collapse; background: #fff; border: 1px solid #dde1e7; min-width: 40em; }
        th, td { text-align: left; padding: .3em .7em; border-bottom: 1px solid #eef0f3; vertical-align: top; }
        th { background: #eef0f3; font-weight: 600; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.self td:first-child { font-weight: 600; }
        .dead { color: #b42318; }
        code { font-family: ui-monospace, monospace; word-break: break-all; }
        svg polyline { fill: none; stroke: #2563eb; stroke-width: 1.5; }
        </style>
        </head>
        <body>
        <h1>CodeBench fleet</h1>
        <div class="muted">served by worker <code id="observer">…</code>; updated <span id="updated">never</span></div>
        <div id="problem" class="error"></div>
        <h2>This worker</h2>
        <div class="cards">
          <div class="card"><div class="muted">jobs finished</div><div class="value" id="finished">0</div>
            <div class="muted" id="endings"></div></div>
          <div class="card"><div class="muted">throughput (jobs/min)</div><div class="value" id="throughput">–</div>
            <svg id="throughput-spark" width="200" height="40" viewBox="0 0 200 40"><polyline points=""/></svg></div>
          <div class="card"><div class="muted">mean VM time per job (s)</div><div class="value" id="latency">–</div>
            <svg id="latency-spark" width="200" height="40" viewBox="0 0 200 40"><polyline points=""/></svg></div>
          <div class="card"><div class="muted">VMs running</div><div class="value" id="vms">–</div></div>
        </div>
        <h2>Queues</h2>
        <table><thead><tr><th>role</th><th>list</th><th>depth</th></tr></thead><tbody id="queues"></tbody></table>
        <h2>Workers <span class="muted" id="worker-count"></span></h2>
        <table><thead><tr><th>worker</th><th>host</th><th>VMM</th><th>pid</th><th>version</th><th>concurrency</th>
          <th>heartbeat</th><th>running jobs</th></tr></thead><tbody id="workers"></tbody></table>
        <h2>Dead letters <span class="muted" id="dead-count"></span></h2>
        <table><thead><tr><th>job</th><th>reason</th><th>when</th></tr></thead><tbody id="dead"></tbody></table>
        <script nonce="{{NONCE}}">
        "use strict";
        const REFRESH_MS = 3000;
        const HISTORY = 60;
        const scrapes = [];

        function el(tag, text, className) {
          const node = document.createElement(tag);
          if (text !== undefined && text !== null) node.textContent = String(text);
          if (className) node.className = className;
          return node;
        }
        function row(cells, className) {
          const tr = el("tr", null, className);
          for (const cell of cells) tr.appendChild(cell instanceof Node ? cell : el("td", cell));
          return tr;
        }
        function codeCell(text) {
          const td = el("td");
          td.appendChild(el("code", text));
          return td;
        }
        function setText(id, text) { document.getElementById(id).textContent = String(text); }
        function replaceRows(id, rows) { document.getElementById(id).replaceChildren(...rows); }
        function age(ms) {
          if (ms === null || ms === undefined) return "unknown";
          if (ms < 1000) return ms + " ms";
          if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
          if (ms < 3600000) return Math.floor(ms / 60000) + " min " + Math.floor(ms / 1000) % 60 + " s";
          return Math.floor(ms / 3600000) + " h " + Math.floor(ms / 60000) % 60 + " min";
        }
        function idText(id) { return id === null || id === undefined ? "(no readable id)" : id; }

        function renderFleet(fleet) {
          setText("observer", fleet.observer || "?");
          replaceRows("queues", fleet.queues.map(q => {
            return row([q.role, codeCell(q.name), el("td", q.depth, "num")], q.role === "dead" && q.depth > 0 ? "dead" : "");
          }));
          setText("worker-count", "(" + fleet.workers.length + ")");
          replaceRows("workers", fleet.workers.map(w => {
            const jobs = el("td");
            if (w.jobs.length === 0) jobs.textContent = "idle";
            for (const job of w.jobs) {
              const line = el("div");
              line.appendChild(el("code", idText(job.id)));
              line.appendChild(document.createTextNode(" for " + age(job.age_ms)));
              jobs.appendChild(line);
            }
            if (w.processing_depth > w.jobs.length) jobs.appendChild(el("div", "… and " + (w.processing_depth - w.jobs.length) + " more"));
            const heartbeat = w.alive ? age(w.heartbeat_age_ms) + " ago" : "none: presumed dead";
            return row([codeCell(w.id), w.host ?? "?", w.vmm ?? "?", w.pid ?? "?", w.version ?? "?", w.concurrency ?? "?",
                        el("td", heartbeat, w.alive ? "" : "dead"), jobs], w.id === fleet.observer ? "self" : "");
          }));
          const dead = fleet.queues.find(q => q.role === "dead");
          setText("dead-count", "(newest " + fleet.dead_letters.length + " of " + (dead ? dead.depth : 0) + ")");
          replaceRows("dead", fleet.dead_letters.map(d => {
            const when = d.dead_at_ms ? new Date(d.dead_at_ms).toISOString() + " (" + age(d.age_ms) + " ago)" : "unknown";
            return row([codeCell(idText(d.id)), d.reason ?? "unknown", when]);
          }));
        }

        // The Prometheus text format: `name{labels} value`; only the samples the cards need.
        function parseMetrics(text) {
          const sample = { endings: {}, vmSum: 0, vmCount: 0, vms: null };
          for (const line of text.split("\n")) {
            if (line.startsWith("#") || line.trim() === "") continue;
            const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
            if (!match) continue;
            const value = Number(match[3]);
            if (!Number.isFinite(value)) continue;
            const name = match[1], labels = match[2] || "";
            if (name === "codebench_worker_jobs_total") {
              const ending = /ending="([^"]*)"/.exec(labels);
              if (ending) sample.endings[ending[1]] = value;
            } else if (name === "codebench_worker_vm_seconds_sum") {
              sample.vmSum = value;
            } else if (name === "codebench_worker_vm_seconds_count") {
              sample.vmCount = value;
            } else if (name === "codebench_worker_vms_running") {
              sample.vms = value;
            }
          }
          sample.finished = (sample.endings.done || 0) + (sample.endings.failed || 0);
          return sample;
        }

        function spark(id, values) {
          const line = document.querySelector("#" + id + " polyline");
          const points = values.filter(v => v !== null);
          if (points.length < 2) { line.setAttribute("points", ""); return; }
          const max = Math.max(...points, 1e-9);
          const step = 200 / (HISTORY - 1);
          const start = HISTORY - values.length;
          const coordinates = [];
          values.forEach((v, i) => {
            if (v === null) return;
            coordinates.push(((start + i) * step).toFixed(1) + "," + (38 - (v / max) * 36).toFixed(1));
          });
          line.setAttribute("points", coordinates.join(" "));
        }

        function renderMetrics(sample) {
          scrapes.push(sample);
          if (scrapes.length > HISTORY + 1) scrapes.shift();
          setText("finished", sample.finished);
          setText("endings", Object.keys(sample.endings).sort().map(k => k + " " + sample.endings[k]).join(", "));
          setText("vms", sample.vms === null ? "–" : sample.vms);
          const throughput = [], latency = [];
          for (let i = 1; i < scrapes.length; i++) {
            const a = scrapes[i - 1], b = scrapes[i];
            const minutes = (b.at - a.at) / 60000;
            throughput.push(minutes > 0 ? Math.max(0, b.finished - a.finished) / minutes : null);
            const jobs = b.vmCount - a.vmCount;
            latency.push(jobs > 0 ? (b.vmSum - a.vmSum) / jobs : null);
          }
          const last = throughput.length ? throughput[throughput.length - 1] : null;
          setText("throughput", last === null ? "–" : last.toFixed(1));
          // Until a job finishes while the page is open, the mean over the worker's whole life.
          let lastLatency = latency.filter(v => v !== null).pop();
          if (lastLatency === undefined && sample.vmCount > 0) lastLatency = sample.vmSum / sample.vmCount;
          setText("latency", lastLatency === undefined ? "–" : lastLatency.toFixed(2));
          spark("throughput-spark", throughput);
          spark("latency-spark", latency);
        }

        async function refresh() {
          const problems = [];
          try {
            const response = await fetch("/fleet.json", { cache: "no-store" });
            if (!response.ok) throw new Error((await response.text()).trim() || response.status);
            renderFleet(await response.json());
          } catch (error) {
            problems.push("fleet status unavailable: " + error.message);
          }
          try {
            const response = await fetch("/metrics", { cache: "no-store" });
            if (!response.ok) throw new Error(response.status);
            const sample = parseMetrics(await response.text());
            sample.at = Date.now();
            renderMetrics(sample);
          } catch (error) {
            problems.push("metrics unavailable: " + error.message);
          }
          setText("problem", problems.join("; "));
          setText("updated", new Date().toLocaleTimeString());
          setTimeout(refresh, REFRESH_MS);
        }
        refresh();
        </script>
        </body>
        </html>
        """#
}

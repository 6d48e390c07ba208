// SPDX-License-Identifier: MIT
// The operator's dashboard (docs/dashboard.md): follows /dashboard/events
// (Server-Sent Events, one `state` a second) and draws it. No framework;
// the two charts are plain SVG. Everything the server sends is put in the
// page as text (textContent), never as markup.
'use strict';
(function () {
  const CLASSES = ['VALID', 'INVALID', 'ERROR', 'REFUSED', 'RATE_LIMITED'];
  const COLORS = { VALID: '#1a7f37', INVALID: '#b3261e', ERROR: '#8a5a00', REFUSED: '#5b5bd6',
    RATE_LIMITED: '#a0449b', p50: '#0b57d0', p95: '#a0449b', total: '#1d1d1b' };
  const SVGNS = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const list = (x) => (Array.isArray(x) ? x : []);   // the server's empty lists come as {}
  const token = new URLSearchParams(location.search).get('token');
  const withToken = (u) => (token ? u + (u.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : u);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function kv(id, pairs) {
    const dl = clear($(id));
    for (const [k, v] of pairs) {
      const d = el('div');
      d.dataset.key = k;
      d.append(el('dt', k), el('dd', v === undefined || v === null ? '–' : v));
      dl.append(d);
    }
  }
  const time = (t) => new Date(t * 1000).toLocaleTimeString();
  const num = (x, d) => (typeof x === 'number' ? x.toFixed(d === undefined ? 1 : d) : '–');

  // a line chart: series = [{ name, color, points: [[t, y], ...] }], x: the last hour
  function chart(svg, series, now) {
    const w = svg.clientWidth || 600, h = svg.clientHeight || 150, l = 40, r = 8, t = 8, b = 18;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    clear(svg);
    let ymax = 0;
    for (const s of series) for (const p of s.points) ymax = Math.max(ymax, p[1] || 0);
    ymax = ymax > 0 ? ymax * 1.1 : 1;
    const x0 = now - 3600;
    const X = (x) => l + ((x - x0) / 3600) * (w - l - r);
    const Y = (y) => h - b - (y / ymax) * (h - t - b);
    const line = (x1, y1, x2, y2) => {
      const e = document.createElementNS(SVGNS, 'line');
      e.setAttribute('x1', x1); e.setAttribute('y1', y1); e.setAttribute('x2', x2); e.setAttribute('y2', y2);
      e.setAttribute('class', 'axis');
      svg.append(e);
    };
    const label = (x, y, text, anchor) => {
      const e = document.createElementNS(SVGNS, 'text');
      e.setAttribute('x', x); e.setAttribute('y', y); e.setAttribute('text-anchor', anchor || 'end');
      e.textContent = text;
      svg.append(e);
    };
    for (const f of [0, 0.5, 1]) {
      line(l, Y(ymax * f), w - r, Y(ymax * f));
      label(l - 4, Y(ymax * f) + 3, ymax * f >= 10 ? Math.round(ymax * f) : (ymax * f).toFixed(1));
    }
    for (const m of [60, 45, 30, 15, 0]) label(X(now - m * 60), h - 4, m ? `-${m}m` : 'now', 'middle');
    for (const s of series) {
      if (!s.points.length) continue;
      const pl = document.createElementNS(SVGNS, 'polyline');
      pl.setAttribute('fill', 'none');
      pl.setAttribute('stroke', s.color);
      pl.setAttribute('stroke-width', '2');
      pl.setAttribute('points', s.points.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1] || 0).toFixed(1)}`).join(' '));
      const title = document.createElementNS(SVGNS, 'title');
      title.textContent = s.name;
      pl.append(title);
      svg.append(pl);
      for (const p of s.points) {   // a dot per 10 s step: a lone step shows too
        const c = document.createElementNS(SVGNS, 'circle');
        c.setAttribute('cx', X(p[0]).toFixed(1));
        c.setAttribute('cy', Y(p[1] || 0).toFixed(1));
        c.setAttribute('r', '2.5');
        c.setAttribute('fill', s.color);
        svg.append(c);
      }
    }
  }

  function render(s) {
    $('version').textContent = `${s.version} · pid ${s.pid}`;
    kv('rates', CLASSES.map((c) => [c + ' /s', num(s.rate && s.rate[c])]).concat([['total', s.total && s.total.n]]));
    const lat = s.latencyMs;
    kv('latency', [['p50 ms', lat ? num(lat.p50) : null], ['p90 ms', lat ? num(lat.p90) : null],
      ['p99 ms', lat ? num(lat.p99) : null], ['samples (1 min)', lat ? lat.samples : 0]]);
    const pts = list(s.series);
    chart($('chart-rate'), [{ name: 'per second', color: COLORS.total, points: pts.map((p) => [p[0], p[1]]) }], s.at);
    chart($('chart-latency'), [{ name: 'p50', color: COLORS.p50, points: pts.map((p) => [p[0], p[2]]) },
      { name: 'p95', color: COLORS.p95, points: pts.map((p) => [p[0], p[3]]) }], s.at);

    const rows = clear($('recent-rows'));
    for (const v of list(s.recent)) {
      const tr = el('tr');
      tr.dataset.class = v.class;
      const verdict = v.class === 'REFUSED' || v.class === 'RATE_LIMITED' ? `${v.class} (${v.code})` : v.class;
      const job = el('td');
      if (v.jobId) {
        const a = el('a', v.jobId.slice(0, 12));
        a.href = withToken('/verify/' + encodeURIComponent(v.jobId));
        a.title = v.jobId;
        job.append(a);
      } else job.textContent = '–';
      const hash = el('td', v.taskHash ? v.taskHash.slice(0, 16) + '…' : '–', 'hash');
      if (v.taskHash) hash.title = v.taskHash;
      tr.append(el('td', time(v.at)), el('td', verdict, 'v-' + v.class), job, hash, el('td', v.language || '–'),
        el('td', num(v.ms)));
      rows.append(tr);
    }

    const rl = s.rateLimit;
    kv('ratelimit', rl ? [['tracked', rl.tracked], ['blocked', rl.blocked], ['blacklisted', rl.blacklisted],
      ['refused (429)', rl.refused]] : [['policy', 'off']]);
    const b = $('breaker-state');
    b.textContent = s.breaker.state;
    b.className = 'badge ' + s.breaker.state;
    const hist = clear($('breaker-history'));
    for (const h of list(s.breaker.history).slice().reverse()) hist.append(el('li', `${time(h.at)} ${h.state}`));
    const w = s.workers, thr = typeof w.threshold === 'number' ? w.threshold : null;
    const m = $('workers-meter');
    m.max = thr || Math.max(1, w.active);
    m.value = w.active;
    $('workers-text').textContent = `${w.active} active` + (thr ? ` of ${thr}` : ' (no threshold)') +
      (w.warm ? `; warm: ${w.warm.lua} Lua, ${w.warm.javascript} JavaScript` : '');

    const ob = s.outbox;
    $('outbox-off').hidden = !!ob;
    const orows = clear($('outbox-rows'));
    if (ob) {
      const st = ob.states || {};
      kv('outbox', [['registry', ob.registry], ['chain', ob.chainId], ['queued', st.pending], ['sent', st.sent],
        ['mined', st.mined], ['failed', st.failed]]);
      for (const r of list(ob.recent)) {
        const tr = el('tr');
        tr.append(el('td', r.id), el('td', r.kind), el('td', r.status), el('td', r.txHash || '–', 'hash'));
        orows.append(tr);
      }
    } else clear($('outbox'));
    const pay = s.payments;
    kv('payments', pay ? Object.entries(pay) : [['payments', 'off']]);

    const g = s.generation;
    kv('generation', [['generation', g.id], ['hash', g.hash], ['policies', list(g.files).length]]);
    const files = clear($('policy-files'));
    for (const f of list(g.files)) files.append(el('li', `${f.policy}: ${f.file}`));
    const rr = s.reload, res = $('reload-result'), err = $('reload-error');
    if (!rr) { res.textContent = 'none since start'; err.hidden = true; } else {
      res.textContent = `${rr.ok ? 'accepted' : 'REJECTED'} at ${time(rr.at)} (${rr.reason || ''})` +
        (rr.ok ? `, generation ${rr.generation}` : '');
      res.className = rr.ok ? 'ok' : 'bad';
      err.hidden = rr.ok;
      err.textContent = rr.ok ? '' : rr.error;
    }

    const up = s.uptime, leases = clear($('leases'));
    $('uptime-off').hidden = !!up;
    if (up && up.error) leases.append(el('p', up.error, 'bad'));
    for (const l of list(up && up.leases)) {
      const d = el('div', null, 'lease');
      d.dataset.lease = l.id;
      d.append(el('h3', `${l.id} (${l.role}, ${l.state})`));
      const dl = el('dl', null, 'kv');
      const ch = l.challenges;
      for (const [k, v] of [['uptime', (l.uptime * 100).toFixed(3) + ' %'], ['beats', l.beats], ['gaps', l.gaps],
        ['missed beats', l.missedBeats], ['challenges passed', ch && ch.passed], ['challenges failed', ch && ch.failed],
        ['score', ch && typeof ch.score === 'number' ? ch.score.toFixed(3) : null],
        ['evidence kept', l.evidence], ['disputes on chain', l.disputes], ['last refusal', l.lastRefusal]]) {
        const x = el('div');
        x.dataset.key = k;
        x.append(el('dt', k), el('dd', v === undefined || v === null ? '–' : typeof v === 'object' ? JSON.stringify(v) : v));
        dl.append(x);
      }
      d.append(dl);
      if (l.svg) { const img = el('img'); img.src = l.svg; img.alt = `timeline of lease ${l.id}`; d.append(img); }
      leases.append(d);
    }
  }

  const conn = $('conn');
  const es = new EventSource(withToken('/dashboard/events'));
  es.addEventListener('state', (e) => {
    conn.textContent = 'live';
    conn.className = 'live';
    render(JSON.parse(e.data));
  });
  es.onerror = () => { conn.textContent = 'disconnected, retrying…'; conn.className = 'down'; };
})();

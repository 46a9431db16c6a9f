// pgflow dashboard: live updates. The server renders every page; this script
// only subscribes to /events (server-sent events, one stream per tab) and,
// when an event arrives, re-fetches the page's JSON (data-src) and updates
// the parts that change. Events are hints: nothing shown comes from them.
// Text is always set with textContent, never parsed as HTML.
(function () {
  'use strict';
  var body = document.body;
  // Set once per page load: a browser test checks it survives live updates.
  window.pgflowLoadedAt = Date.now();
  body.dataset.updates = '0';

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function badge(status) { return el('span', 'badge status-' + status, status); }
  function duration(secs) {
    if (secs === null || secs === undefined) return '';
    if (secs < 1) return Math.round(secs * 1000) + ' ms';
    if (secs < 60) return secs.toFixed(1) + ' s';
    if (secs < 3600) return Math.floor(secs / 60) + 'm ' + String(Math.floor(secs % 60)).padStart(2, '0') + 's';
    return Math.floor(secs / 3600) + 'h ' + String(Math.floor((secs % 3600) / 60)).padStart(2, '0') + 'm';
  }
  function time(iso) { return iso ? iso.replace('T', ' ').slice(0, 19) : ''; }
  function link(href, text, cls) { var a = el('a', cls, text); a.href = href; return a; }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) {
      var td = document.createElement('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? '' : String(c);
      tr.appendChild(td);
    });
    return tr;
  }
  function replaceRows(tbody, rows) {
    if (!tbody) return;
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    rows.forEach(function (r) { tbody.appendChild(r); });
  }

  var apply = {
    run: function (data) {
      var run = data.run;
      var status = document.querySelector('.run-head .facts .badge');
      if (status) { status.className = 'badge status-' + run.status; status.textContent = run.status; }
      var bar = document.getElementById('run-progress');
      if (bar) {
        bar.querySelector('.fill').style.width = run.percent.toFixed(1) + '%';
        bar.querySelector('.pct').textContent = Math.round(run.percent) + '%';
        bar.setAttribute('aria-valuenow', Math.round(run.percent));
      }
      var d = document.getElementById('run-duration');
      if (d) d.textContent = duration(run.duration_secs);
      var counts = document.getElementById('run-counts');
      if (counts) counts.textContent = run.steps_done + '/' + run.steps_total + ' steps, ' + run.tasks_done + '/' + run.tasks_planned + ' tasks';
      document.querySelectorAll('#run-actions form').forEach(function (f) {
        var action = f.getAttribute('action') || '';
        var keep = (/\/cancel$/.test(action) && run.status === 'started') || (/\/retry$/.test(action) && run.status === 'failed');
        f.hidden = !keep;
      });
      data.steps.forEach(function (s) {
        var node = document.querySelector('svg.dag g.node[data-step="' + CSS.escape(s.step_slug) + '"]');
        if (node) {
          node.setAttribute('class', 'node status-' + s.status);
          var detail = node.querySelector('text.detail');
          if (detail) detail.textContent = (s.step_type === 'map' ? 'map · ' : '') + s.detail;
        }
        var tr = document.querySelector('#steps-table tr[data-step="' + CSS.escape(s.step_slug) + '"]');
        if (tr) {
          var st = tr.querySelector('td.status');
          st.textContent = '';
          st.appendChild(badge(s.status));
          if (s.skip_reason) { st.appendChild(document.createTextNode(' ')); st.appendChild(el('span', 'muted', s.skip_reason)); }
          tr.querySelector('td.tasks').textContent = s.tasks_done + '/' + (s.initial_tasks === null ? '?' : s.initial_tasks);
          tr.querySelector('td.attempts').textContent = s.attempts;
          tr.querySelector('td.duration').textContent = duration(s.duration_secs);
          var track = tr.querySelector('.track');
          track.textContent = '';
          if (s.bar) {
            var b = el('div', 'bar status-' + s.status);
            b.style.left = s.bar.offset_pct.toFixed(2) + '%';
            b.style.width = s.bar.width_pct.toFixed(2) + '%';
            track.appendChild(b);
          }
        }
      });
      var failing = data.failing_step && data.steps.filter(function (s) { return s.step_slug === data.failing_step; })[0];
      var box = document.getElementById('failure');
      if (failing && !box) {
        box = el('section', 'failure');
        box.id = 'failure';
        var h = el('h2', null, 'Step ');
        h.appendChild(el('code', null, failing.step_slug));
        h.appendChild(document.createTextNode(' ' + failing.status));
        box.appendChild(h);
        box.appendChild(el('pre', 'error-text', failing.error_message || '(no message)'));
        var dag = document.querySelector('section.dag-box');
        if (dag) dag.after(box);
      }
    },
    runs: function (data) {
      replaceRows(document.getElementById('runs-body'), data.runs.map(function (r) {
        return row([link('/runs/' + r.run_id, r.run_id, 'mono'), link('/flows/' + encodeURIComponent(r.flow_slug), r.flow_slug),
          badge(r.status), r.steps_done + '/' + r.steps_total, time(r.started_at), duration(r.duration_secs)]);
      }));
      var empty = document.getElementById('runs-empty');
      if (empty) empty.hidden = data.runs.length > 0;
    },
    workers: function (data) {
      replaceRows(document.getElementById('workers-body'), data.workers.map(function (w) {
        var tr = row([w.worker_id, w.queue_name, w.function_name, badge(w.state), duration(w.heartbeat_age_secs) + ' ago', w.tasks_in_flight, time(w.started_at)]);
        tr.firstChild.className = 'mono';
        return tr;
      }));
    },
    queues: function (data) {
      function n(v) { return v === null || v === undefined ? '—' : v; }
      replaceRows(document.getElementById('queues-body'), data.queues.map(function (q) {
        return row([link('/flows/' + encodeURIComponent(q.flow_slug), q.flow_slug), n(q.visible), n(q.total),
          q.oldest_age_secs === null ? '—' : duration(q.oldest_age_secs), n(q.archived), q.tasks_in_flight]);
      }));
    }
  };

  // Confirmations (no inline handlers: the CSP allows only this script).
  document.querySelectorAll('form[data-confirm]').forEach(function (f) {
    f.addEventListener('submit', function (e) { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
  });

  var page = body.dataset.page;
  var src = body.dataset.src;
  var live = body.dataset.live;
  var indicator = document.getElementById('live-indicator');
  if (!src || !live || !apply[page] || !window.EventSource) return;

  var timer = null, busy = false, again = false;
  function schedule() {
    if (timer) return;
    // Coalesce bursts (a map step emits many events) into one fetch.
    timer = setTimeout(refresh, 150);
  }
  function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    fetch(src, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) { apply[page](data); body.dataset.updates = String(Number(body.dataset.updates) + 1); }
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; schedule(); } });
  }
  var opened = false;
  var events = new EventSource(live);
  events.addEventListener('hello', function () {
    if (indicator) indicator.className = 'live on';
    // After a reconnect, catch up on what was missed.
    if (opened) schedule();
    opened = true;
  });
  events.addEventListener('pgflow', schedule);
  events.onerror = function () { if (indicator) indicator.className = 'live off'; };
})();

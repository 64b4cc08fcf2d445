/** The dashboard page: static HTML and a small script that renders server-sent states. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Switchboard name server</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
  .sub { color: #5b6475; margin-bottom: 1em; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0001; }
  th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #e4e7ec; vertical-align: top; }
  th { background: #eef1f5; font-weight: 600; }
  td.mono, span.mono { font-family: ui-monospace, monospace; font-size: 13px; }
  .counters { display: flex; flex-wrap: wrap; gap: .6em; }
  .counter { background: #fff; padding: .45em .8em; border-radius: 6px; box-shadow: 0 1px 2px #0001; }
  .counter b { font-size: 1.2em; display: block; }
  .live { color: #1a7f37; } .dead { color: #b42318; } .ttl { color: #9a6700; }
  .empty { color: #8a93a3; font-style: italic; }
  .md { color: #5b6475; font-size: 12px; }
</style>
</head>
<body>
<h1>Switchboard name server</h1>
<div class="sub"><span id="conn" class="dead">connecting…</span> · store <b id="store">?</b> · <span id="addresses" class="mono"></span></div>
<h2>Operations</h2>
<div class="counters" id="counters"></div>
<h2>Names (<span id="count">0</span>)</h2>
<table id="names"><thead><tr><th>name</th><th>contact</th><th>protocol</th><th>owner</th><th>since</th><th>lease</th></tr></thead><tbody></tbody></table>
<h2>Connected clients (<span id="ccount">0</span>)</h2>
<table id="clients"><thead><tr><th>#</th><th>client</th><th>pid</th><th>uid</th><th>via</th><th>names</th><th>watches</th><th>connected for</th></tr></thead><tbody></tbody></table>
<script>
(function () {
  var state = null, skew = 0;
  function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function dur(ms) { if (ms < 0) ms = 0; var s = Math.round(ms / 1000); if (s < 120) return s + ' s'; var m = Math.round(s / 60); if (m < 120) return m + ' min'; return Math.round(m / 60) + ' h'; }
  function render() {
    if (!state) return;
    var now = Date.now() - skew;
    document.getElementById('store').textContent = state.stats.store;
    document.getElementById('addresses').textContent = state.addresses.join('  ');
    var c = document.getElementById('counters'); c.textContent = '';
    var ops = state.stats.ops, keys = ['register','lookup','renew','unregister','list','watch','hello'];
    Object.keys(ops).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    keys.forEach(function (k) { var d = el('div', undefined, 'counter'); d.appendChild(el('b', ops[k] || 0)); d.appendChild(el('span', k)); c.appendChild(d); });
    [['errors', state.stats.errors], ['protocol errors', state.stats.protocolErrors], ['events', state.stats.events], ['connections', state.stats.connectionsTotal]].forEach(function (p) {
      var d = el('div', undefined, 'counter'); d.appendChild(el('b', p[1])); d.appendChild(el('span', p[0])); c.appendChild(d);
    });
    document.getElementById('count').textContent = state.totalNames + (state.totalNames > state.names.length ? ' (first ' + state.names.length + ' shown)' : '');
    var tb = document.querySelector('#names tbody'); tb.textContent = '';
    if (state.names.length === 0) { var tr0 = el('tr'); var td0 = el('td', 'no names registered', 'empty'); td0.colSpan = 6; tr0.appendChild(td0); tb.appendChild(tr0); }
    state.names.forEach(function (r) {
      var tr = el('tr'); tr.dataset.name = r.name;
      tr.appendChild(el('td', r.name, 'mono name'));
      var ct = el('td', r.contact.address, 'mono');
      if (r.contact.metadata && Object.keys(r.contact.metadata).length) ct.appendChild(el('div', JSON.stringify(r.contact.metadata), 'md'));
      tr.appendChild(ct);
      var proto = r.contact.protocol + (r.contact.program !== undefined ? ' prog ' + r.contact.program : '') + (r.contact.version !== undefined ? ' v' + r.contact.version : '');
      tr.appendChild(el('td', proto));
      tr.appendChild(el('td', r.owner.client + (r.owner.pid !== undefined ? ' (pid ' + r.owner.pid + ')' : '')));
      tr.appendChild(el('td', new Date(r.since).toLocaleTimeString()));
      tr.appendChild(r.leaseExpiresAt === undefined ? el('td', 'held by live connection', 'live') : el('td', dur(r.leaseExpiresAt - now) + ' left', 'ttl'));
      tb.appendChild(tr);
    });
    document.getElementById('ccount').textContent = state.clients.length;
    var cb = document.querySelector('#clients tbody'); cb.textContent = '';
    state.clients.forEach(function (k) {
      var tr = el('tr');
      [k.id, k.client, k.pid === undefined ? '' : k.pid, k.uid === undefined ? '' : k.uid, k.transport, k.names, k.watches, dur(now - k.since)].forEach(function (v) { tr.appendChild(el('td', v)); });
      cb.appendChild(tr);
    });
  }
  var es = new EventSource('/events');
  es.addEventListener('state', function (e) { state = JSON.parse(e.data); skew = Date.now() - state.now; render(); });
  es.onopen = function () { var s = document.getElementById('conn'); s.textContent = 'live'; s.className = 'live'; };
  es.onerror = function () { var s = document.getElementById('conn'); s.textContent = 'reconnecting…'; s.className = 'dead'; };
  setInterval(render, 1000);
})();
</script>
</body>
</html>
`;

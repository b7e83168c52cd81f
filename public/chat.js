// The chat page: the seed tutorial's chat room (a name, the welcome, one's own messages on the
// right and the others' on the left, send with the button or Enter, empty input refused) over
// the transport of one's choice (chat-transports.js), with history on join, resume after a drop
// without duplicates, and what the chosen transport costs. Messages are only ever set as text.
(function () {
  'use strict';

  const CHANNEL = 'chat';
  const HISTORY = 50; // messages shown on join
  const ONLINE_EVERY = 4000; // ms between two looks at the channel's subscriber count
  const T = window.HeraldTransports;
  const $ = (id) => document.getElementById(id);
  const list = $('messages');
  const input = $('input');
  const hint = $('hint');
  const nameInput = $('name');
  const intervalSel = $('interval');

  // ---------------------------------------------------------------------------------------------
  // Settings: ?user= and ?transport= win, then what this browser remembered.
  const storage = {
    get(k) { try { return localStorage.getItem(k); } catch { return null; } },
    set(k, v) { try { localStorage.setItem(k, v); } catch { /* private mode: not remembered */ } },
  };
  const cleanName = (s) => (s || '').replace(/\s+/g, ' ').trim().slice(0, 32);
  const params = new URLSearchParams(location.search);
  let name = cleanName(params.get('user')) || cleanName(storage.get('herald.chat.name')) ||
    `用户${Math.floor(Math.random() * 100)}`; // the seed's default name
  storage.set('herald.chat.name', name);
  let transportName = [params.get('transport'), storage.get('herald.chat.transport')]
    .find((t) => t && Object.hasOwn(T, t)) || 'socketio';
  const savedInterval = storage.get('herald.chat.interval');
  if ([...intervalSel.options].some((o) => o.value === savedInterval)) intervalSel.value = savedInterval;

  // ---------------------------------------------------------------------------------------------
  // Cursors: "<epoch>:<id>". The newest one seen is where every transport resumes.
  let epoch = null;
  let lastId = 0;
  const cursor = () => (epoch === null ? null : `${epoch}:${lastId}`);
  function parseCursor(c) {
    const i = typeof c === 'string' ? c.lastIndexOf(':') : -1;
    if (i <= 0) return null;
    const id = Number(c.slice(i + 1));
    return Number.isSafeInteger(id) && id >= 0 ? { epoch: c.slice(0, i), id } : null;
  }
  function advance(c) {
    const p = parseCursor(c);
    if (!p) return;
    if (p.epoch !== epoch) { epoch = p.epoch; lastId = p.id; } else if (p.id > lastId) lastId = p.id;
  }

  // ---------------------------------------------------------------------------------------------
  // What the chosen transport costs, since it was chosen.
  let stats;
  const resetStats = () => { stats = { requests: 0, bytes: 0, messages: 0, latencies: [], last: null }; };
  resetStats();
  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} kB`;
    return `${(n / 1048576).toFixed(1)} MB`;
  }
  let statsQueued = false;
  function renderStats() {
    if (statsQueued) return;
    statsQueued = true;
    requestAnimationFrame(() => {
      statsQueued = false;
      const approx = T[transportName].approx && stats.bytes > 0 ? '≈ ' : '';
      $('stat-requests').textContent = String(stats.requests);
      $('stat-bytes').textContent = approx + formatBytes(stats.bytes);
      $('stat-messages').textContent = String(stats.messages);
      const lat = $('stat-latency');
      if (stats.last === null) {
        lat.textContent = '–';
      } else {
        const sorted = [...stats.latencies].sort((a, b) => a - b);
        const median = sorted[Math.floor((sorted.length - 1) / 2)];
        const small = document.createElement('small');
        small.textContent = `median ${median} ms`;
        lat.replaceChildren(`${stats.last} ms`, small);
      }
      $('side-summary').textContent =
        `${name} · ${T[transportName].short} · ${stats.requests} req · ${approx}${formatBytes(stats.bytes)}`;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The message list. Every message has keys: its cursor, and its "mid" (set by the sending
  // page) or else its JSON text; a message already shown under one of them is not shown again.
  const shown = new Map(); // key -> <li>
  let unread = 0;

  function hue(s) {
    let h = 0;
    for (const ch of s) h = (h * 31 + ch.codePointAt(0)) % 360;
    return h;
  }
  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  function toBottom() {
    list.scrollTop = list.scrollHeight;
    unread = 0;
    $('jump').hidden = true;
  }
  function afterInsert(stick) {
    $('empty').hidden = list.querySelector('.msg') !== null;
    if (stick) { toBottom(); return; }
    unread++;
    const jump = $('jump');
    jump.textContent = `↓ ${unread} new message${unread === 1 ? '' : 's'}`;
    jump.hidden = false;
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  // A value from the channel as a chat message; other publishers may send anything.
  function normalize(data) {
    if (data && typeof data === 'object' && !Array.isArray(data)) {
      const text = typeof data.message === 'string' ? data.message : JSON.stringify(data.message ?? data);
      return {
        user: cleanName(String(data.userId ?? '')) || 'anonymous',
        text,
        ts: Number.isFinite(data.ts) ? data.ts : null,
        mid: typeof data.mid === 'string' ? data.mid : null,
      };
    }
    return { user: 'anonymous', text: typeof data === 'string' ? data : JSON.stringify(data), ts: null, mid: null };
  }

  function insertOrdered(li, p) {
    // after every message with a smaller id of the same epoch; a message without a cursor
    // (or a notice) stays where it is
    let ref = null;
    if (p) {
      for (let el = list.lastElementChild; el; el = el.previousElementSibling) {
        if (el.dataset.epoch === p.epoch && Number(el.dataset.id) > p.id) ref = el;
        else break;
      }
    }
    list.insertBefore(li, ref);
  }

  // m: {cursor, time, data}; live: arrived over the transport (not the history on join).
  function onMessage(m, live) {
    const data = m.data;
    if (data && typeof data === 'object' && data.type === 'init') return;
    const msg = normalize(data);
    const cKey = m.cursor ? `c:${m.cursor}` : null;
    const altKey = msg.mid ? `m:${msg.mid}` : `j:${JSON.stringify(data)}`;
    if (cKey && shown.has(cKey)) { advance(m.cursor); return; }
    const twin = shown.get(altKey);
    if (twin && (!cKey || !twin.dataset.cursor)) {
      // the same message, once with and once without its cursor
      if (cKey) { twin.dataset.cursor = m.cursor; shown.set(cKey, twin); }
      advance(m.cursor);
      return;
    }

    const p = parseCursor(m.cursor);
    const now = Date.now();
    const li = document.createElement('li');
    li.className = 'msg ' + (msg.user === name ? 'own' : 'other');
    li.dataset.user = msg.user;
    if (m.cursor) li.dataset.cursor = m.cursor;
    if (p) { li.dataset.epoch = p.epoch; li.dataset.id = String(p.id); }

    const avatar = document.createElement('span');
    avatar.className = 'avatar';
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = (Array.from(msg.user)[0] || '?').toUpperCase();
    avatar.style.setProperty('--hue', String(hue(msg.user)));

    const body = document.createElement('div');
    body.className = 'body';
    const meta = document.createElement('div');
    meta.className = 'meta';
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = msg.user;
    const sent = msg.ts ?? m.time ?? now;
    const time = document.createElement('time');
    time.dateTime = new Date(sent).toISOString();
    time.title = new Date(sent).toLocaleString();
    time.textContent = clock(sent);
    meta.append(who, time);
    if (live) {
      // publish -> display: from the sender's clock ("ts", set when it sent), else from
      // herald's publish time where the transport gives it
      const from = msg.ts ?? m.time;
      if (from !== null && from !== undefined) {
        const ms = Math.max(0, Math.round(now - from));
        const lat = document.createElement('span');
        lat.className = 'lat';
        lat.textContent = `${ms} ms`;
        lat.title = msg.ts !== null ? 'publish → display, from the sender\'s send time'
          : 'publish → display, from herald\'s publish time';
        meta.append(lat);
        stats.last = ms;
        stats.latencies.push(ms);
        if (stats.latencies.length > 1000) stats.latencies.shift();
      }
      stats.messages++;
      renderStats();
    }
    const text = document.createElement('p');
    text.className = 'text';
    text.textContent = msg.text;
    body.append(meta, text);
    li.append(avatar, body);

    const stick = nearBottom() || (live && msg.user === name);
    insertOrdered(li, p);
    if (cKey) shown.set(cKey, li);
    if (!shown.has(altKey)) shown.set(altKey, li);
    advance(m.cursor);
    afterInsert(stick);
  }

  function notice(text, cls = '') {
    const stick = nearBottom();
    const li = document.createElement('li');
    li.className = `notice ${cls}`.trim();
    const span = document.createElement('span');
    span.textContent = text;
    li.append(span);
    list.append(li);
    if (stick) toBottom();
    return li;
  }

  let welcomed = false;
  function onWelcome(text) {
    if (welcomed) return;
    welcomed = true;
    notice(text, 'welcome');
  }

  const GAPS = {
    trimmed: 'Some messages are no longer kept by the server: the conversation below has a gap.',
    epoch: 'The server\'s history was reset: messages from before are gone.',
    unknown: 'The server did not know where this page left off; showing what it has.',
  };
  let lastGap = null;
  function onGap(reason) {
    if (lastGap && lastGap.isConnected && lastGap === list.lastElementChild) return;
    lastGap = notice(GAPS[reason] || GAPS.unknown, 'gap');
  }

  list.addEventListener('scroll', () => { if (nearBottom()) { unread = 0; $('jump').hidden = true; } });
  $('jump').addEventListener('click', () => { toBottom(); input.focus(); });

  // ---------------------------------------------------------------------------------------------
  // Connection state and the online count.
  const STATES = { connecting: 'connecting…', connected: 'connected', reconnecting: 'reconnecting…' };
  function setState(s) {
    const el = $('state');
    if (el.dataset.state === s) return;
    el.dataset.state = s;
    el.textContent = STATES[s];
    document.body.dataset.state = s;
    if (s === 'connected') refreshOnline();
  }

  let onlineBusy = false;
  async function refreshOnline() {
    if (onlineBusy) return;
    onlineBusy = true;
    try {
      const r = await fetch(`/pub/${CHANNEL}`, { cache: 'no-store' });
      const info = await r.json();
      const n = Object.values(info.subscribers || {}).reduce((a, b) => a + (Number(b) || 0), 0);
      $('online').textContent = `${n} online`;
    } catch {
      $('online').textContent = '– online';
    } finally {
      onlineBusy = false;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The transport in use. Callbacks of one that was replaced are ignored.
  let current = null;
  let generation = 0;
  let joined = false;

  function makeCtx(gen) {
    const mine = () => gen === generation;
    return {
      channel: CHANNEL,
      cursor,
      user: () => name,
      interval: () => Number(intervalSel.value),
      message: (m) => { if (mine()) onMessage(m, true); },
      advance: (c) => { if (mine()) advance(c); },
      gap: (r) => { if (mine()) onGap(r); },
      welcome: (t) => { if (mine()) onWelcome(t); },
      state: (s) => { if (mine()) setState(s); },
      meter: {
        request: () => { if (mine()) { stats.requests++; renderStats(); } },
        bytes: (n) => { if (mine()) { stats.bytes += n; renderStats(); } },
      },
    };
  }

  function showTransport() {
    const t = T[transportName];
    for (const r of document.querySelectorAll('input[name="transport"]')) r.checked = r.value === transportName;
    $('interval-row').hidden = transportName !== 'poll';
    $('cost-name').textContent = t.label;
    $('cost-note').textContent = `${t.note} Latency: display time minus the "ts" the sending page ` +
      'put in the message (one clock when both pages run on one machine), or herald\'s publish time ' +
      'for messages without one.';
    document.body.dataset.transport = transportName;
    renderStats();
  }

  function use(next, announce) {
    if (current) current.stop();
    current = null;
    generation++;
    transportName = next;
    storage.set('herald.chat.transport', next);
    resetStats();
    showTransport();
    if (!joined) return;
    $('state').dataset.state = '';
    setState('connecting');
    if (announce) notice(`Now using ${T[next].label}`, 'switch');
    current = T[next].make(makeCtx(generation));
    current.start();
  }

  // ---------------------------------------------------------------------------------------------
  // Join: the last HISTORY messages, then the transport from the newest cursor.
  async function join() {
    for (let attempt = 0; ; attempt++) {
      try {
        const info = await (await fetch(`/pub/${CHANNEL}`, { cache: 'no-store' })).json();
        const since = `${info.epoch}:${Math.max(0, info.last_id - HISTORY)}`;
        const r = await fetch(`/poll/${CHANNEL}?since=${encodeURIComponent(since)}`, { cache: 'no-store' });
        const answer = await r.json();
        if (!r.ok) throw new Error(answer.error);
        advance(`${info.epoch}:${info.last_id}`);
        for (const m of answer.messages) onMessage(m, false);
        advance(answer.next);
        break;
      } catch {
        setState('reconnecting');
        await new Promise((resolve) => setTimeout(resolve, Math.min(500 * 2 ** attempt, 5000)));
      }
    }
    $('empty').hidden = list.querySelector('.msg') !== null;
    toBottom();
    joined = true;
    use(transportName, false);
  }

  // ---------------------------------------------------------------------------------------------
  // Sending, as in the seed: trimmed text, refused when empty (with a hint, not an alert).
  function randomId() {
    const b = crypto.getRandomValues(new Uint8Array(8));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }
  function showHint(text) {
    hint.textContent = text;
    hint.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  }
  function hideHint() {
    hint.hidden = true;
    input.removeAttribute('aria-invalid');
  }

  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) {
      showHint('Type a message first: empty messages are not sent.');
      input.focus();
      return;
    }
    if (!current) {
      showHint('Still connecting; try again in a moment.');
      return;
    }
    hideHint();
    input.value = '';
    input.focus();
    const value = { type: 'message', message: text, userId: name, ts: Date.now(), mid: randomId() };
    current.publish(value).catch(() => {
      if (!input.value) input.value = text;
      showHint('Not sent: the server cannot be reached. Your text is kept; send it again when connected.');
    });
  });
  input.addEventListener('input', () => { if (!hint.hidden && input.value.trim()) hideHint(); });

  // ---------------------------------------------------------------------------------------------
  // The name, the transport choice, the phone-width panel toggle.
  nameInput.value = name;
  nameInput.addEventListener('change', () => {
    const v = cleanName(nameInput.value);
    nameInput.value = v || name;
    if (!v || v === name) return;
    name = v;
    storage.set('herald.chat.name', name);
    renderStats();
    for (const li of list.querySelectorAll('.msg')) {
      const own = li.dataset.user === name;
      li.classList.toggle('own', own);
      li.classList.toggle('other', !own);
    }
  });
  nameInput.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') input.focus(); });

  for (const r of document.querySelectorAll('input[name="transport"]')) {
    r.addEventListener('change', () => { if (r.checked && r.value !== transportName) use(r.value, true); });
  }
  intervalSel.addEventListener('change', () => storage.set('herald.chat.interval', intervalSel.value));

  const toggle = $('side-toggle');
  toggle.addEventListener('click', () => {
    const open = toggle.getAttribute('aria-expanded') !== 'true';
    toggle.setAttribute('aria-expanded', String(open));
    document.querySelector('.side').classList.toggle('open', open);
  });

  showTransport();
  refreshOnline();
  setInterval(refreshOnline, ONLINE_EVERY);
  join();
})();

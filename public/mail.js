// The unread-mail demo: an inbox badge bound to the per-user channel "user:{name}".
// On load it shows the channel's current value (its latest {"unread": n} message), then follows
// the channel live over the chosen transport: SSE, WebSocket, long-polling, short polling or
// Socket.IO. Every transport resumes from the cursor of the last message it saw, so a message
// published while the page is connecting or reconnecting is not missed. Cursors are opaque
// ("<epoch>:<id>"); the only one built here is "<epoch>:<n>" from GET /pub/{channel}.
// Values are shown as text only.
(function () {
  'use strict';

  const TRANSPORTS = {
    sse: { label: 'SSE', note: 'Server-Sent Events: one long HTTP response; EventSource reconnects by itself with Last-Event-ID.' },
    websocket: { label: 'WebSocket', note: 'A WebSocket on /ws/{channel}: one frame per message, resumed with ?since= after a drop.' },
    longpoll: { label: 'Long-polling', note: 'Long-polling: each request is held until a message comes (or 30 s pass), then asked again with since=next.' },
    poll: { label: 'Short polling', note: 'Short polling: asks /poll/{channel} every 2 seconds, so an update may take up to 2 s to show.' },
    socketio: { label: 'Socket.IO', note: 'Socket.IO: the default app puts the socket in the room "user:{user}", which receives the channel (the user of its token when herald wants tokens, else auth {user}).' },
  };
  const ALIASES = { ws: 'websocket', lp: 'longpoll', 'long-polling': 'longpoll', shortpoll: 'poll', sio: 'socketio', 'socket.io': 'socketio' };
  const USER_RE = /^[A-Za-z0-9_.:@-]{1,195}$/; // channel names: 1-200 of these, "user:" included
  const POLL_MS = 2000;
  const HISTORY_WINDOW = 20; // on load, the latest unread value among the channel's last messages
  const LOG_MAX = 6;

  const $ = (id) => document.getElementById(id);
  const badge = $('badge');
  const folderBadge = $('folder-badge');
  const summary = $('summary');
  const connText = $('conn-text');
  const userInput = $('user');
  const userHint = $('user-hint');
  const log = $('log');
  const logEmpty = $('log-empty');

  const store = {
    get(k) { try { return localStorage.getItem(k); } catch (e) { return null; } },
    set(k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode: not remembered */ } },
  };

  const params = new URLSearchParams(location.search);
  let user = [params.get('user'), store.get('herald-mail.user'), 'alice'].find((u) => u && USER_RE.test(u));
  let transport = [params.get('transport'), store.get('herald-mail.transport'), 'sse']
    .map((t) => t && (ALIASES[t.toLowerCase()] || t.toLowerCase())).find((t) => t && TRANSPORTS[t]);
  let unread = null;   // the count shown, null while not known
  let session = null;  // the live connection: { alive, stop() }

  const channel = () => 'user:' + user;
  const delay = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---- what the page shows --------------------------------------------------------------------

  function setState(state, text) {
    document.body.dataset.state = state;
    connText.textContent = text;
  }

  function render() {
    const known = unread !== null;
    const text = !known ? '–' : unread > 999 ? '999+' : String(unread);
    badge.textContent = text;
    badge.dataset.unread = known ? String(unread) : '';
    badge.classList.toggle('unknown', !known);
    badge.classList.toggle('zero', unread === 0);
    badge.title = known ? `${unread} unread` : 'unread count not known yet';
    folderBadge.textContent = known && unread > 0 ? text : '';
    summary.textContent = !known ? 'Loading the unread count…'
      : unread === 0 ? 'No unread mail. You are all caught up.'
        : `You have ${unread} unread message${unread === 1 ? '' : 's'}.`;
    document.title = (known && unread > 0 ? `(${text}) ` : '') + `Inbox · ${user} · herald mail`;
  }

  function bump() {
    badge.classList.remove('bump');
    void badge.offsetWidth; // restart the animation
    badge.classList.add('bump');
  }

  function note(text) {
    const li = document.createElement('li');
    const time = document.createElement('time');
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const what = document.createElement('span');
    what.textContent = text;
    li.append(time, what);
    log.prepend(li);
    while (log.children.length > LOG_MAX) log.lastElementChild.remove();
    logEmpty.hidden = true;
  }

  // The unread count in a message value, or null when the value is something else.
  function countOf(v) {
    if (typeof v === 'string') {
      try { v = JSON.parse(v); } catch (e) { return null; }
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
    const n = v.unread;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : null;
  }

  // A live value: returns true if it was an unread count (anything else is ignored).
  function live(v) {
    const n = countOf(v);
    if (n === null) return false;
    const changed = n !== unread;
    unread = n;
    render();
    if (changed) bump();
    note(`${n} unread · ${TRANSPORTS[transport].label}`);
    return true;
  }

  function shown(n, why) {
    unread = n;
    render();
    if (why) note(why);
  }

  function showCommand() {
    const url = `${location.origin}/pub/${channel()}`;
    // a herald that wants tokens lets only backends (its --publish-key) publish on user:*
    const key = auth.needed ? ` -H "Authorization: Bearer $HERALD_PUBLISH_KEY"` : '';
    $('curl').textContent = `curl -H 'Content-Type: application/json'${key} -d '{"unread": 3}' ${url}`;
    $('channel').textContent = channel();
    userInput.value = user;
  }

  // ---- herald's channel API -------------------------------------------------------------------

  // ---- the token -------------------------------------------------------------------------------
  // herald with a token key (--jwt-secret) lets only the token of user "alice" read user:alice.
  // A real site's login hands its pages that token; here it comes from herald's development-only
  // endpoint GET /dev/token?sub=NAME (herald --dev-tokens, never on a public server). The page
  // asks for one only once a read is refused with 401, so against an open herald nothing
  // changes. It goes as "Authorization: Bearer" on fetches, as ?token= where headers cannot be
  // set (EventSource, WebSocket), and as auth.token to Socket.IO; it is renewed a minute before
  // it expires (a stream closed at expiry resumes from its cursor with the new one).
  const auth = { needed: false, token: null, exp: 0, user: null, pending: null };

  async function fetchToken() {
    const r = await fetch(`/dev/token?sub=${encodeURIComponent(user)}`, { cache: 'no-store' });
    if (!r.ok) {
      const e = new Error(r.status === 404
        ? 'This herald needs a token to read the inbox, and hands none out here (start it with --dev-tokens to try the page).'
        : `/dev/token: HTTP ${r.status}`);
      e.fatal = r.status === 404;
      throw e;
    }
    const t = await r.json();
    if (auth.token === null) note(`Signed in as ${t.sub} with a development token (/dev/token)`);
    Object.assign(auth, { token: t.token, exp: t.exp * 1000, user: user });
    return t.token;
  }

  // The token to send (null when the server asked for none), fresh for at least a minute.
  async function token() {
    if (!auth.needed) return null;
    if (auth.token && auth.user === user && auth.exp - Date.now() > 60000) return auth.token;
    if (!auth.pending) auth.pending = fetchToken().finally(() => { auth.pending = null; });
    return auth.pending;
  }

  const withToken = async (url) => {
    const t = await token();
    return t ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(t)}` : url;
  };

  async function getJSON(path, signal) {
    for (let tries = 0; ; tries++) {
      const t = await token();
      const headers = t ? { Authorization: `Bearer ${t}` } : {};
      const r = await fetch(path, { signal, cache: 'no-store', headers });
      if (r.status === 401 && tries === 0) {
        auth.needed = true; // this herald wants a token: get one and ask again
        auth.token = null;
        showCommand();
        continue;
      }
      if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
      return r.json();
    }
  }

  // The channel's current unread count (null if none is kept) and the cursor to follow it from.
  async function current(signal) {
    const ch = channel();
    const info = await getJSON(`/pub/${ch}`, signal);
    let cursor = `${info.epoch}:${info.last_id}`;
    let n = null;
    if (info.last_id > 0) {
      // the latest message is the state; a few before it stand in if it is not a count
      const from = Math.max(info.last_id - HISTORY_WINDOW, (info.first_id || 1) - 1, 0);
      let since = `${info.epoch}:${from}`;
      for (;;) {
        const a = await getJSON(`/poll/${ch}?since=${encodeURIComponent(since)}`, signal);
        for (const m of a.messages) {
          const c = countOf(m.data);
          if (c !== null) n = c;
        }
        since = a.next;
        if (!a.more) break;
      }
      cursor = since;
    }
    return { n, cursor };
  }

  // ---- transports -----------------------------------------------------------------------------
  // Each returns { stop() } and reports through setState/live; s.alive turns false on stop.

  function backoff(s) {
    const ms = s.retry;
    s.retry = Math.min(s.retry * 2, 10000);
    return ms;
  }

  // Load the current value, retrying until it works; resolves to the cursor (null if stopped).
  async function load(s) {
    for (;;) {
      try {
        const { n, cursor } = await current(s.abort.signal);
        if (!s.alive) return null;
        if (n !== null && n !== unread) shown(n, `${n} unread · current value`);
        else if (n === null && unread === null) shown(0, null);
        return cursor;
      } catch (e) {
        if (!s.alive) return null;
        if (e.fatal) { setState('error', e.message); return null; }
        setState('reconnecting', 'Offline, retrying…');
        await delay(backoff(s));
        if (!s.alive) return null;
      }
    }
  }

  function gap(reason) {
    note(reason === 'trimmed' ? 'Some older updates were dropped from history; showing the newest.'
      : 'The channel restarted; showing its current value.');
  }

  const open = {
    sse(s) {
      let es = null;
      const start = async () => {
        const cursor = await load(s);
        if (!cursor) return;
        es = new EventSource(await withToken(`/sse/${channel()}?lastEventId=${encodeURIComponent(cursor)}`));
        es.onopen = () => { s.retry = 500; setState('connected', 'Live'); };
        es.onmessage = (e) => live(e.data);
        es.addEventListener('gap', (e) => { try { gap(JSON.parse(e.data).reason); } catch (x) { gap(''); } });
        es.onerror = () => {
          if (!s.alive) return;
          if (es.readyState === EventSource.CLOSED) {
            // a refused stream (not a dropped one) is not retried by EventSource itself
            es = null;
            setState('reconnecting', 'Reconnecting…');
            setTimeout(() => { if (s.alive) start(); }, backoff(s));
          } else {
            setState('reconnecting', 'Reconnecting…');
          }
        };
      };
      start();
      return { stop() { if (es) es.close(); } };
    },

    websocket(s) {
      let ws = null;
      let cursor = null;
      const connect = async () => {
        if (!s.alive) return;
        const base = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
        let url;
        try { url = await withToken(`${base}/ws/${channel()}?since=${encodeURIComponent(cursor)}`); } catch (e) {
          if (s.alive) setTimeout(connect, backoff(s));
          return;
        }
        if (!s.alive) return;
        ws = new WebSocket(url);
        ws.onopen = () => { s.retry = 500; setState('connected', 'Live'); };
        ws.onmessage = (e) => {
          let f;
          try { f = JSON.parse(e.data); } catch (x) { return; }
          if (!f || typeof f !== 'object') return;
          if ('gap' in f) gap(f.gap);
          else if (typeof f.cursor === 'string' && 'data' in f) { cursor = f.cursor; live(f.data); }
        };
        ws.onclose = () => {
          ws = null;
          if (!s.alive) return;
          setState('reconnecting', 'Reconnecting…');
          setTimeout(connect, backoff(s));
        };
      };
      load(s).then((c) => { if (c) { cursor = c; connect(); } });
      return {
        stop() {
          if (!ws) return;
          ws.onclose = ws.onmessage = null;
          // closing a socket still connecting makes the browser log an error: close it once open
          if (ws.readyState === WebSocket.CONNECTING) ws.onopen = function () { this.close(); };
          else ws.close();
        },
      };
    },

    longpoll(s) { return polling(s, 'lp', 0); },
    poll(s) { return polling(s, 'poll', POLL_MS); },

    socketio(s) {
      let sock = null;
      let renew = null;
      // asks the channel first: a 401 there means this herald wants a token (Socket.IO joins
      // the user's room by the token given when it connects)
      let epoch = null;
      Promise.all([loadScript('/vendor/socket.io.min.js'),
        getJSON(`/pub/${channel()}`, s.abort.signal).then((i) => { epoch = i.epoch; }, () => {})]).then(async () => {
        if (!s.alive) return;
        let t = null;
        try { t = await token(); } catch (e) { if (s.alive) setState('error', e.message); return; }
        if (!s.alive) return;
        sock = window.io({ auth: t ? { user, token: t } : { user }, forceNew: true });
        // a token about to expire is replaced on the open connection, and kept for reconnects
        const keepFresh = () => {
          if (!auth.needed || !s.alive) return;
          renew = setTimeout(async () => {
            try {
              const nt = await token();
              sock.auth.token = nt;
              await sock.timeout(5000).emitWithAck('herald:refresh', nt);
            } catch (e) { /* expired: herald disconnects, the reconnect below gets a new one */ }
            keepFresh();
          }, Math.max(auth.exp - Date.now() - 60000, 1000));
        };
        keepFresh();
        sock.on('herald:error', (e) => { if (e && e.error) note(`herald: ${e.error}`); });
        let seen = 0; // live counts received, to tell whether a fetched value is already stale
        sock.on('connect', async () => {
          setState('connected', 'Live');
          if (sock.recovered) return; // the missed messages are replayed
          const mark = seen;
          try {
            const { n } = await current(s.abort.signal);
            if (s.alive && seen === mark && n !== null && n !== unread) shown(n, `${n} unread · current value`);
            else if (s.alive && n === null && unread === null) shown(0, null);
          } catch (e) { /* the live messages still come */ }
        });
        // the default app also sends its welcome and the "chat" room's messages: a channel
        // message's last argument is its cursor, whose epoch names the channel, so only this
        // user's channel counts (a count published to another room is ignored)
        sock.on('message', (v, ...rest) => {
          const off = rest[rest.length - 1];
          if (typeof off !== 'string' || !off.includes(':')) return; // the welcome: not a channel's
          if (epoch === null || !off.startsWith(`${epoch}:`)) return;
          if (live(v)) seen++;
        });
        sock.on('disconnect', async (reason) => {
          if (!s.alive) return;
          setState('reconnecting', 'Reconnecting…');
          if (reason === 'io server disconnect') {
            // herald let go (the token expired): connect again with a new one
            try { sock.auth.token = await token(); } catch (e) { /* retried below */ }
            if (s.alive) setTimeout(() => { if (s.alive) sock.connect(); }, backoff(s));
          }
        });
        sock.on('connect_error', () => { if (s.alive) setState('reconnecting', 'Reconnecting…'); });
      }, () => {
        if (s.alive) setState('error', 'Socket.IO client missing (run scripts/setup.sh build)');
      });
      return { stop() { clearTimeout(renew); if (sock) { sock.off(); sock.disconnect(); } } };
    },
  };

  // Long-polling (held answers, asked again at once) and short polling (every POLL_MS).
  function polling(s, kind, every) {
    (async () => {
      let cursor = await load(s);
      while (cursor && s.alive) {
        if (!every) setState('connected', 'Live'); // the held request is the connection
        try {
          const a = await getJSON(`/${kind}/${channel()}?since=${encodeURIComponent(cursor)}`, s.abort.signal);
          if (!s.alive) return;
          s.retry = 500;
          setState('connected', 'Live');
          if (a.gap) gap(a.gap);
          for (const m of a.messages) live(m.data);
          cursor = a.next;
          if (a.more) continue;
          if (every) await delay(every);
        } catch (e) {
          if (!s.alive) return;
          setState('reconnecting', 'Reconnecting…');
          await delay(backoff(s));
        }
      }
    })();
    return { stop() {} };
  }

  const scripts = {};
  function loadScript(src) {
    if (window.io) return Promise.resolve();
    if (!scripts[src]) {
      scripts[src] = new Promise((resolve, reject) => {
        const el = document.createElement('script');
        el.src = src;
        el.onload = () => (window.io ? resolve() : reject(new Error('no io')));
        el.onerror = () => { delete scripts[src]; el.remove(); reject(new Error('load failed')); };
        document.head.append(el);
      });
    }
    return scripts[src];
  }

  function connect() {
    if (session) {
      session.alive = false;
      session.abort.abort();
      session.stop();
    }
    const s = { alive: true, retry: 500, abort: new AbortController() };
    session = s;
    document.body.dataset.transport = transport;
    $('transport-note').textContent = TRANSPORTS[transport].note;
    setState('connecting', 'Connecting…');
    s.stop = open[transport](s).stop;
  }

  function remember() {
    store.set('herald-mail.user', user);
    store.set('herald-mail.transport', transport);
    const q = new URLSearchParams(location.search);
    q.set('user', user);
    q.set('transport', transport);
    history.replaceState(null, '', `${location.pathname}?${q}`);
  }

  // ---- controls -------------------------------------------------------------------------------

  $('user-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const u = userInput.value.trim();
    const ok = USER_RE.test(u);
    userHint.hidden = ok;
    userInput.setAttribute('aria-invalid', String(!ok));
    if (!ok) { userInput.focus(); return; }
    if (u === user) return;
    user = u;
    unread = null;
    log.replaceChildren();
    logEmpty.hidden = false;
    render();
    showCommand();
    remember();
    connect();
  });
  userInput.addEventListener('input', () => {
    if (USER_RE.test(userInput.value.trim())) { userHint.hidden = true; userInput.removeAttribute('aria-invalid'); }
  });

  for (const r of document.querySelectorAll('input[name="transport"]')) {
    r.checked = r.value === transport;
    r.addEventListener('change', () => {
      if (!r.checked || r.value === transport) return;
      transport = r.value;
      remember();
      connect();
    });
  }

  $('copy').addEventListener('click', async () => {
    const text = $('curl').textContent;
    const copied = $('copied');
    try {
      await navigator.clipboard.writeText(text);
      copied.textContent = 'Copied to the clipboard.';
    } catch (e) {
      // no clipboard (plain http off localhost): select it for Ctrl+C instead
      const range = document.createRange();
      range.selectNodeContents($('curl'));
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });

  render();
  showCommand();
  remember();
  connect();
  window.mail = { get unread() { return unread; }, get transport() { return transport; }, get user() { return user; } };
})();

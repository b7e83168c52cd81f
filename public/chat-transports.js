// The five ways the chat page reads and writes a herald channel: Socket.IO (socket.io-client,
// served from vendor/), a channel WebSocket (/ws/{ch}), SSE (/sse/{ch}) + POST, long polling
// (/lp/{ch}) + POST and short polling (/poll/{ch}) + POST. Each resumes from the page's newest
// cursor when it starts or reconnects, and counts what it costs: the requests it makes and the
// bytes it receives (exact for HTTP bodies and WebSocket frames; "≈" where the browser hides
// the wire: SSE framing, Socket.IO's Engine.IO packets).
//
// A transport gets a ctx from the page:
//   channel, cursor() (newest cursor or null), user() (the name), interval() (short polling, ms),
//   message({cursor, time, data}), advance(cursor), gap(reason), welcome(text),
//   state('connecting' | 'connected' | 'reconnecting'), meter.request(), meter.bytes(n)
// and offers start(), stop(), publish(value) -> Promise.
(function () {
  'use strict';

  const encoder = new TextEncoder();
  const utf8 = (s) => (typeof s === 'string' ? encoder.encode(s).length : 0);
  const q = encodeURIComponent;

  // 0.5 s, 1 s, 2 s, 4 s, then 5 s, with jitter so that many pages do not come back at once
  const backoff = (attempt) => Math.min(500 * 2 ** attempt, 5000) * (0.8 + Math.random() * 0.4);

  class Base {
    constructor(ctx) {
      this.ctx = ctx;
      this.stopped = false;
      this.attempt = 0;
      this.timers = new Set();
      this.aborts = new Set();
    }

    // Run fn after ms unless the transport was stopped meanwhile.
    later(fn, ms) {
      const t = setTimeout(() => { this.timers.delete(t); if (!this.stopped) fn(); }, ms);
      this.timers.add(t);
    }

    retry(fn) {
      if (this.stopped) return;
      this.ctx.state('reconnecting');
      this.later(fn, backoff(this.attempt++));
    }

    // One counted HTTP request whose answer is JSON; stop() aborts the reads (not the publishes).
    async fetchJson(path, init = {}, abortable = true) {
      const ac = abortable ? new AbortController() : null;
      if (ac) this.aborts.add(ac);
      this.ctx.meter.request();
      try {
        const r = await fetch(path, { cache: 'no-store', ...init, signal: ac ? ac.signal : undefined });
        const body = await r.arrayBuffer();
        this.ctx.meter.bytes(body.byteLength);
        if (!r.ok) throw new Error(`HTTP ${r.status} for ${path}`);
        return JSON.parse(new TextDecoder().decode(body));
      } finally {
        if (ac) this.aborts.delete(ac);
      }
    }

    // Hand a /poll or /lp answer to the page; true when the server has more to give at once.
    deliver(answer) {
      if (this.stopped) return false;
      if (answer.gap) this.ctx.gap(answer.gap);
      for (const m of answer.messages) this.ctx.message({ cursor: m.cursor, time: m.time, data: m.data });
      if (answer.next) this.ctx.advance(answer.next);
      return !!answer.more;
    }

    // Everything after the newest cursor, at once (a resume, and the first step of polling).
    async catchUp() {
      let more = true;
      while (more && !this.stopped) {
        const c = this.ctx.cursor();
        more = this.deliver(await this.fetchJson(`/poll/${this.ctx.channel}` + (c ? `?since=${q(c)}` : '')));
      }
    }

    post(value) {
      return this.fetchJson(`/pub/${this.ctx.channel}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(value),
      }, false);
    }

    publish(value) { return this.post(value); }

    stop() {
      this.stopped = true;
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      for (const ac of this.aborts) ac.abort();
      this.aborts.clear();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Socket.IO, as in the seed: socket.io-client with its default transports (HTTP long-polling,
  // then the upgrade to WebSocket). herald puts every socket in room "chat", whose broadcasts
  // are the channel's messages. The auth payload is a function so that each reconnect sends the
  // newest cursor (herald replays what came after it); the page also asks /poll for anything
  // newer after each (re)connect that Socket.IO did not recover itself, and drops duplicates.
  class SocketIO extends Base {
    start() {
      const ctx = this.ctx;
      this.engines = new WeakSet();
      const socket = io({
        forceNew: true,
        autoConnect: false,
        reconnectionDelay: 500,
        reconnectionDelayMax: 4000,
        auth: (cb) => {
          const offset = ctx.cursor();
          cb(offset ? { user: ctx.user(), offset } : { user: ctx.user() });
        },
      });
      this.socket = socket;
      socket.on('connect', () => {
        this.attempt = 0;
        ctx.state('connected');
        if (!socket.recovered) this.catchUp().catch(() => {});
      });
      socket.on('disconnect', () => { if (!this.stopped) ctx.state('reconnecting'); });
      socket.on('connect_error', () => { if (!this.stopped) ctx.state('reconnecting'); });
      // the manager builds a new Engine.IO socket synchronously after this event: meter it
      this.onAttempt = () => queueMicrotask(() => this.meterEngine(socket.io.engine));
      socket.io.on('reconnect_attempt', this.onAttempt);
      socket.on('message', (data, ...rest) => {
        if (this.stopped) return;
        if (data && typeof data === 'object' && data.type === 'init') {
          ctx.welcome(String(data.message));
          return;
        }
        // with connection state recovery on, the last argument is the offset; for channel
        // messages it is the channel cursor "<epoch>:<id>"
        const cursor = rest.reverse().find((a) => typeof a === 'string' && a.includes(':')) || null;
        ctx.message({ cursor, time: null, data });
      });
      socket.connect();
      this.meterEngine(socket.io.engine);
    }

    // Requests: the first HTTP request (or WebSocket) of each Engine.IO socket, every later poll
    // and POST of the polling transport, the WebSocket of the upgrade. Bytes: every Engine.IO
    // packet received (its type character and data, without the polling framing).
    meterEngine(engine) {
      if (!engine || this.engines.has(engine)) return;
      this.engines.add(engine);
      const m = this.ctx.meter;
      const watch = (t) => {
        m.request();
        if (t.name === 'polling') {
          t.on('poll', () => m.request());
          t.on('drain', () => m.request());
        }
      };
      watch(engine.transport);
      engine.on('upgrade', watch);
      engine.on('packet', (p) => m.bytes(1 + utf8(p.data)));
    }

    publish(value) {
      // socket.io-client buffers emits made while disconnected and sends them on reconnect
      this.socket.emit('message', value);
      return Promise.resolve();
    }

    stop() {
      super.stop();
      if (this.socket) {
        this.socket.off();
        this.socket.io.off('reconnect_attempt', this.onAttempt);
        this.socket.disconnect();
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // WebSocket on /ws/{ch}?since=CURSOR: frames {id,cursor,time,data}, {gap,first} before an
  // incomplete replay, {ack,cursor} after our own publish. Sending is a JSON text frame.
  class PlainWebSocket extends Base {
    start() { this.open(); }

    open() {
      const c = this.ctx.cursor();
      const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
        `/ws/${this.ctx.channel}` + (c ? `?since=${q(c)}` : '');
      const ws = new WebSocket(url);
      this.ws = ws;
      this.ctx.meter.request();
      ws.onopen = () => { this.attempt = 0; this.ctx.state('connected'); };
      ws.onmessage = (ev) => {
        if (this.stopped || typeof ev.data !== 'string') return;
        this.ctx.meter.bytes(utf8(ev.data));
        let f;
        try { f = JSON.parse(ev.data); } catch { return; }
        if ('ack' in f) return;
        if ('gap' in f) { this.ctx.gap(f.gap); return; }
        this.ctx.message({ cursor: f.cursor, time: f.time, data: f.data });
      };
      ws.onclose = () => {
        if (this.ws !== ws || this.stopped) return;
        this.ws = null;
        this.retry(() => this.open());
      };
    }

    publish(value) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('not connected'));
      this.ws.send(JSON.stringify(value));
      return Promise.resolve();
    }

    stop() {
      super.stop();
      if (this.ws) { this.ws.onclose = null; this.ws.close(1000); this.ws = null; }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Server-Sent Events on /sse/{ch}: "id: <cursor>" and the value as data; the first request
  // resumes with ?lastEventId=, the browser's own reconnects send Last-Event-ID (which herald
  // prefers). An EventSource that gave up (readyState CLOSED) is replaced after a backoff.
  class ServerSentEvents extends Base {
    start() { this.open(); }

    open() {
      const c = this.ctx.cursor();
      const es = new EventSource(`/sse/${this.ctx.channel}` + (c ? `?lastEventId=${q(c)}` : ''));
      this.es = es;
      this.ctx.meter.request();
      // "id: <cursor>\ndata: <json>\n\n": the browser shows only the fields, so this is an estimate
      const framing = (ev) => utf8(ev.data) + utf8(ev.lastEventId) + (ev.lastEventId ? 15 : 11);
      es.onopen = () => { this.attempt = 0; this.ctx.state('connected'); };
      es.onmessage = (ev) => {
        if (this.stopped) return;
        this.ctx.meter.bytes(framing(ev));
        let data;
        try { data = JSON.parse(ev.data); } catch { data = ev.data; }
        this.ctx.message({ cursor: ev.lastEventId || null, time: null, data });
      };
      es.addEventListener('gap', (ev) => {
        if (this.stopped) return;
        this.ctx.meter.bytes(framing(ev) + 12);
        let reason = 'unknown';
        try { reason = JSON.parse(ev.data).reason || reason; } catch { /* keep "unknown" */ }
        this.ctx.gap(reason);
      });
      es.onerror = () => {
        if (this.stopped || this.es !== es) return;
        if (es.readyState === EventSource.CLOSED) {
          es.close();
          this.retry(() => this.open());
        } else {
          // the browser reconnects by itself, with Last-Event-ID
          this.ctx.state('reconnecting');
          this.ctx.meter.request();
        }
      };
    }

    stop() {
      super.stop();
      if (this.es) { this.es.close(); this.es = null; }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Long polling on /lp/{ch}?since=CURSOR: herald holds the request until a message comes (or
  // --lp-timeout passes) and the page asks again with "next" at once. After a start or an error
  // the first request is a /poll (answered at once), so the page knows it is connected.
  class LongPoll extends Base {
    start() { this.live = false; this.loop(); }

    async loop() {
      try {
        if (!this.live) {
          await this.catchUp();
        } else {
          const c = this.ctx.cursor();
          this.deliver(await this.fetchJson(`/lp/${this.ctx.channel}` + (c ? `?since=${q(c)}` : '')));
        }
        if (this.stopped) return;
        this.live = true;
        this.attempt = 0;
        this.ctx.state('connected');
        this.loop();
      } catch {
        this.live = false;
        this.retry(() => this.loop());
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Short polling on /poll/{ch}?since=CURSOR every interval(): a message waits for the next tick.
  class ShortPoll extends Base {
    start() { this.tick(); }

    async tick() {
      try {
        await this.catchUp();
        if (this.stopped) return;
        this.attempt = 0;
        this.ctx.state('connected');
        this.later(() => this.tick(), this.ctx.interval());
      } catch {
        this.retry(() => this.tick());
      }
    }
  }

  window.HeraldTransports = {
    socketio: { label: 'Socket.IO', short: 'Socket.IO', make: (ctx) => new SocketIO(ctx), approx: true,
      note: 'Requests: Engine.IO\'s HTTP polls and POSTs, its WebSocket, and one /poll/chat after each ' +
        '(re)connect for anything missed. Received: Engine.IO packets (≈: without HTTP and polling ' +
        'framing) and those /poll answers.' },
    websocket: { label: 'WebSocket', short: 'WebSocket', make: (ctx) => new PlainWebSocket(ctx), approx: false,
      note: 'Requests: one WebSocket handshake per (re)connect. Received: frame payloads.' },
    sse: { label: 'SSE + POST', short: 'SSE', make: (ctx) => new ServerSentEvents(ctx), approx: true,
      note: 'Requests: one event stream per (re)connect, and a POST per message sent. Received: events ' +
        'with their id/data lines (≈: heartbeats are invisible to the page) and POST answers.' },
    longpoll: { label: 'Long polling + POST', short: 'Long polling', make: (ctx) => new LongPoll(ctx), approx: false,
      note: 'Requests: every poll (after a (re)connect the first one is an immediate /poll/chat) and a ' +
        'POST per message sent. Received: answer bodies (headers not counted).' },
    poll: { label: 'Short polling + POST', short: 'Short polling', make: (ctx) => new ShortPoll(ctx), approx: false,
      note: 'Requests: every poll and a POST per message sent. Received: answer bodies (headers not ' +
        'counted).' },
  };
})();

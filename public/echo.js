// The echo page: every message sent to /echo comes back; messages are shown as text only.
(function () {
  const log = document.getElementById('log');
  const state = document.getElementById('state');
  const form = document.getElementById('form');
  const input = document.getElementById('text');
  const hint = document.getElementById('hint');
  let ws;
  let retry = 500;

  function add(dir, text) {
    const li = document.createElement('li');
    const tag = document.createElement('span');
    tag.className = 'dir';
    tag.textContent = dir;
    li.append(tag, document.createTextNode(text));
    log.append(li);
    log.scrollTop = log.scrollHeight;
  }

  function setState(text, cls) {
    state.textContent = text;
    state.className = 'state ' + (cls || '');
  }

  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo';
    ws = new WebSocket(url);
    setState('connecting…');
    ws.onopen = () => { retry = 500; setState('connected', 'open'); };
    ws.onmessage = (ev) => add('echo', typeof ev.data === 'string' ? ev.data : '[binary]');
    ws.onclose = (ev) => {
      setState('reconnecting…', 'closed');
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    hint.hidden = text !== '';
    if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    add('sent', text);
    input.value = '';
  });

  connect();
})();

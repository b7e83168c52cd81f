// Peer for bench/run-sio.sh: the tutorial's server.js (the seed's 后端部分), unchanged in what
// it does: Express + Socket.IO 4.8 with CORS origin "*", socket.send({type:"init",message:"欢迎连接"})
// on connection, and io.emit('message', msg) for every "message" a client emits (sender included).
// Socket.IO options are the defaults (connection state recovery off, ping 25 s / 20 s).
//
// Only the start-up differs from the tutorial, so that a script can run it:
//   node sio-chat.cjs [--host 127.0.0.1] [--port 3000] [--public DIR] [--quiet]
//   (PORT / HOST in the environment work too; --port 0 picks a free port)
// prints "listening on http://HOST:PORT" once it accepts connections. --quiet drops the
// tutorial's per-connection console.log lines (herald's --quiet does the same).
const express = require('express');
const http = require('http');
const { Server } = require('socket.io');

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const host = opt('--host', process.env.HOST || '127.0.0.1');
const port = Number(opt('--port', process.env.PORT || '3000'));
const publicDir = opt('--public', 'public');
const quiet = args.includes('--quiet');
const log = quiet ? () => {} : console.log;

// 创建 Express 应用和 HTTP 服务器
const app = express();
const server = http.createServer(app);

// 创建 Socket.IO 实例
const io = new Server(server, {
  cors: {
    origin: '*',
  },
});

io.on('connection', (socket) => {
  log('用户已连接', socket.id);

  socket.send({
    type: 'init',
    message: '欢迎连接',
  });

  socket.on('message', (msg) => {
    // 广播给所有用户
    io.emit('message', msg);
  });

  socket.on('disconnect', () => {
    log('用户已断开连接');
  });
});

// 提供静态文件（HTML、CSS、JS）
app.use(express.static(publicDir));

server.listen(port, host, () => {
  console.log(`listening on http://${host}:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}

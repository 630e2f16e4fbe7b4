// Captures a HAR with real Chromium (headless, driven by playwright-core's recordHar):
// serves a tiny page that opens one WebSocket per user to the backend, sends a
// heartbeat, a few chats (waiting for each chat's agent_completed) and a non-JSON
// error probe, then closes.
//
//   node scripts/node/har-capture.mjs --backend ws://127.0.0.1:18000 --out DIR/capture.har \
//        [--content attach|embed] [--users alice,bob] [--chats 2] [--chromium /usr/bin/chromium]
//
// Prints one JSON line: what the page sent and received per connection, to compare with
// `wsreplay show` of the imported HAR. Exit 0 ok, 1 the page failed, 2 bad usage.
import http from 'node:http';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
if (!args.backend || !args.out) {
  console.error('usage: node har-capture.mjs --backend ws://HOST:PORT --out FILE.har [--content attach|embed] [--users a,b] [--chats N]');
  process.exit(2);
}
const users = (args.users ?? 'alice,bob').split(',');
const chats = Number(args.chats ?? 2);

// The page: plain browser JavaScript, the way a frontend talks to the backend.
const page = `<!doctype html><meta charset="utf-8"><title>wsreplay capture</title>
<script>
const CHATS = ["What did we spend on EC2 and S3 last month?", "Show me the usage trend for Lambda",
               "Any cost spike in RDS this week?", "Summarise our CloudFront bill"];
function session(url, chats) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const counts = { sent: 0, received: 0, events: {} };
    let waiting = null;
    const next = (pred) => new Promise((ok) => { waiting = { pred, ok }; });
    const send = (m) => { ws.send(typeof m === 'string' ? m : JSON.stringify(m)); counts.sent++; };
    ws.onerror = () => reject(new Error('websocket error on ' + url));
    ws.onmessage = (e) => {
      counts.received++;
      let ev = null;
      try { ev = JSON.parse(e.data); } catch (_) {}
      const type = ev && ev.type || '(text)';
      counts.events[type] = (counts.events[type] || 0) + 1;
      if (waiting && waiting.pred(ev)) { const w = waiting; waiting = null; w.ok(ev); }
    };
    ws.onopen = async () => {
      try {
        send({ type: 'heartbeat', timestamp: Date.now() / 1000 });
        await next((ev) => ev && ev.type === 'heartbeat_response');
        for (let i = 0; i < chats; i++) {
          const id = 'msg_' + crypto.randomUUID().replace(/-/g, '').slice(0, 12);
          send({ type: 'chat', message_id: id, text: CHATS[i % CHATS.length] });
          await next((ev) => ev && (ev.type === 'agent_completed' || ev.type === 'error'));
        }
        send('this is not json');
        await next((ev) => ev && ev.type === 'error');
        ws.onclose = () => resolve(counts);
        ws.close(1000, 'done');
      } catch (e) { reject(e); }
    };
  });
}
window.capture = async (backend, users, chats) =>
  Promise.all(users.map((u) => session(backend + '/ws?user_id=' + u, chats)));
</script>`;

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(page);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: args.chromium ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let code = 0;
try {
  const context = await browser.newContext({ recordHar: { path: args.out, content: args.content ?? 'attach' } });
  const tab = await context.newPage();
  await tab.goto(pageUrl);
  const sessions = await tab.evaluate(([b, u, c]) => window.capture(b, u, c), [args.backend, users, chats]);
  await context.close(); // writes the HAR
  console.log(JSON.stringify({ har: args.out, page: pageUrl, users, sessions }));
} catch (e) {
  console.error(`har-capture: ${e.message}`);
  code = 1;
} finally {
  await browser.close();
  server.close();
}
process.exit(code);

// A real STOMP-over-WebSocket client for scripts/stomp-check.sh: @stomp/stompjs on the
// `ws` package. Connects to URL offering the v10/v11/v12.stomp subprotocols, subscribes
// to DESTINATION (receipt asked, waited for), then sends COUNT JSON orders, each with
// content-type:application/json and a receipt, waits for every RECEIPT and every order's
// MESSAGE (whenever it comes once subscribed), and disconnects (stompjs asks a receipt
// for the DISCONNECT).
//
// It prints a transcript that depends only on what the server said, not on broker ids or
// timing: the negotiated subprotocol and STOMP version, each receipt, each message's
// destination, content type and body. Exits 1 (saying why) on an error frame, a closed
// socket or when nothing arrives for 10 seconds.
//
//   node stomp-client.mjs URL DESTINATION COUNT
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

Object.assign(globalThis, { WebSocket });

const [url, destination, count] = process.argv.slice(2);
if (!url || !destination || !count) {
  console.error('usage: node stomp-client.mjs URL DESTINATION COUNT');
  process.exit(2);
}
const fail = (why) => {
  console.error(`stomp-client: ${why}`);
  process.exit(1);
};
const timer = setTimeout(() => fail('no answer for 10 seconds'), 10_000);
const progress = () => timer.refresh();

const client = new Client({
  brokerURL: url,
  connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
  heartbeatIncoming: 0,
  heartbeatOutgoing: 0,
  reconnectDelay: 0,
});

// Every arrival the client waits for (receipt ids, `message-<order>`), named up front so
// that whatever comes in whichever order is expected; the transcript prints them sorted,
// so the order in which a server interleaves RECEIPTs and MESSAGEs does not change it.
const pending = new Set();
const lines = [];
let allArrived;
const arrived = (what, line) => {
  progress();
  if (!pending.delete(what)) fail(`unexpected: ${line}`);
  lines.push(line);
  if (pending.size === 0) allArrived();
};
const receipt = (id, then = () => {}) => {
  client.watchForReceipt(id, () => {
    arrived(id, `receipt ${id}`);
    then();
  });
  return id;
};

client.onConnect = async (frame) => {
  progress();
  console.log(`connected subprotocol=${client.webSocket.protocol} version=${frame.headers.version}`);
  const orders = [...Array(Number(count)).keys()].map((i) => i + 1);
  ['sub-receipt', ...orders.flatMap((i) => [`send-${i}`, `message-${i}`])].forEach((w) => pending.add(w));
  const all = new Promise((done) => { allArrived = done; });
  // Like most clients, it sends once the broker confirmed the subscription.
  await new Promise((subscribed) => {
    client.subscribe(destination, (message) => {
      const { headers, body } = message;
      const order = JSON.parse(body).order?.id;
      arrived(`message-${order}`, `message destination=${headers.destination} content-type=${headers['content-type']} body=${body}`);
    }, { receipt: receipt('sub-receipt', subscribed) });
  });
  for (const i of orders) {
    const order = { order: { id: i, item: `widget-${i}`, quantity: i * 2, express: i % 2 === 0 } };
    client.publish({
      destination,
      body: JSON.stringify(order),
      headers: { 'content-type': 'application/json', receipt: receipt(`send-${i}`) },
    });
  }
  await all;
  console.log(lines.sort().join('\n'));
  await client.deactivate();
  console.log('disconnected');
  clearTimeout(timer);
};
client.onStompError = (frame) => fail(`ERROR frame: ${frame.headers.message} ${frame.body}`);
client.onWebSocketClose = (event) => {
  if (client.active) fail(`the socket closed (code ${event.code})`);
};
client.onWebSocketError = () => fail(`could not talk to ${url}`);
client.activate();

// Validates an AsyncAPI document with the official parser (@asyncapi/parser).
//   node scripts/node/asyncapi-check.mjs FILE
// Prints every diagnostic; on success one JSON line with what the parser understood:
//   {"ok":true,"version":"3.0.0","channels":[...],"operations":{"NAME":"send"|"receive"},"messages":N}
// Exit 0 valid, 1 invalid, 2 could not run.
import { readFileSync } from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const file = process.argv[2];
if (!file) {
  console.error('usage: node asyncapi-check.mjs FILE');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'));
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
for (const d of diagnostics) {
  console.error(`${['error', 'warning', 'info', 'hint'][d.severity] ?? d.severity} ${d.code} at /${d.path.join('/')}: ${d.message}`);
}
if (!document || errors.length) {
  console.error(`${file}: INVALID (${errors.length} error(s))`);
  process.exit(1);
}
const operations = {};
for (const op of document.operations().all()) operations[op.id()] = op.action();
console.log(JSON.stringify({
  ok: true,
  version: document.version(),
  channels: document.channels().all().map((c) => c.id()),
  operations,
  messages: document.messages().all().length,
}));

// An MCP client on the official TypeScript SDK, driven by tests/integration/mcp_test.cpp:
//
//   node mcp_client.mjs URL KEY CALLS_JSON
//
// Connects to URL with the streamable HTTP transport (Authorization: Bearer KEY),
// lists the tools, makes each tool call of CALLS_JSON ([{"name", "arguments"}, ...])
// in order and prints one JSON line:
//   {"protocolVersion", "server", "capabilities", "tools": [names], "results": [CallToolResult | {"rpcError"}]}
// If connecting fails it prints {"connectError": message, "code": HTTP status} and exits 2. The C++ test
// checks the output; this script only drives the SDK.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, key, callsJson] = process.argv.slice(2);
const calls = JSON.parse(callsJson || '[]');

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
});
const client = new Client({ name: 'bytefreezer-mcp-test', version: '1.0.0' });

try {
  await client.connect(transport);
} catch (e) {
  process.stdout.write(JSON.stringify({ connectError: String(e && e.message ? e.message : e), code: e?.code ?? null }) + '\n');
  process.exit(2);
}

const out = {
  protocolVersion: transport.protocolVersion ?? null,
  server: client.getServerVersion(),
  capabilities: client.getServerCapabilities(),
  sessionId: transport.sessionId ?? null,
};
const listed = await client.listTools();
out.tools = listed.tools.map((t) => t.name);
out.results = [];
for (const call of calls) {
  try {
    out.results.push(await client.callTool({ name: call.name, arguments: call.arguments ?? {} }));
  } catch (e) {
    out.results.push({ rpcError: { code: e.code ?? null, message: String(e.message ?? e) } });
  }
}
await client.ping();
await client.close();
process.stdout.write(JSON.stringify(out) + '\n');

// Sign in to a Kutanga Hub, make a game server, start it and talk to its console.
//
// The worked example of docs/api.md, with graphql-ws (https://the-guild.dev/graphql/ws) as the
// graphql-transport-ws client and Node.js 18 or newer:
//
//   npm ci --prefix docs/examples
//   KUTANGA_EMAIL=admin@localhost.localdomain KUTANGA_PASSWORD=... node docs/examples/console.mjs
//
// KUTANGA_URL (default http://127.0.0.1:8080) names the hub and SERVER_NAME the new server.
// The account needs server.create, and template.manage to choose the Custom command's program.

import { createClient } from "graphql-ws";
import WebSocket from "ws";

const hub = (process.env.KUTANGA_URL ?? "http://127.0.0.1:8080").replace(/\/$/, "");
const name = process.env.SERVER_NAME ?? "echo-from-node";
// A server that says "ready", then answers every line written to it.
const program = 'echo ready; while read line; do echo "you said: $line"; done';

// The access token (15 minutes) from `login`, over plain HTTP.
async function signIn() {
  const response = await fetch(`${hub}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      query: "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }",
      variables: { email: process.env.KUTANGA_EMAIL, password: process.env.KUTANGA_PASSWORD },
    }),
  });
  const answer = await response.json();
  if (answer.errors) {
    const [error] = answer.errors;
    throw new Error(`sign-in refused: ${error.extensions.code}: ${error.message}`);
  }
  return answer.data.login.accessToken;
}

const token = await signIn();
// The token goes in connection_init; the hub closes the socket with 4403 without a valid one.
const client = createClient({
  url: `${hub.replace(/^http/, "ws")}/graphql/ws`,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
});

// One answer of a query or mutation (the socket carries them too).
async function request(query, variables = {}) {
  for await (const result of client.iterate({ query, variables })) {
    if (result.errors) throw new Error(`${result.errors[0].extensions?.code}: ${result.errors[0].message}`);
    return result.data;
  }
  throw new Error("no answer");
}

try {
  const { templates } = await request("{ templates { id name } }");
  const custom = templates.find((t) => t.name === "Custom command").id;
  const { createServer: server } = await request(
    "mutation($input: CreateServerInput!) { createServer(input: $input) { id state } }",
    {
      input: {
        name,
        templateId: custom,
        variables: [
          { key: "COMMAND", value: "/bin/sh" },
          { key: "ARGS", value: JSON.stringify(["-c", program]) },
          { key: "READY", value: "ready" },
        ],
      },
    },
  );
  console.log(`created ${name} (${server.id}): ${server.state}`);

  // The console from the moment the hub takes the subscription on (the lines before it:
  // `server(id:) { consoleTail(lines:) { line } }`).
  const lines = client.iterate({
    query: "subscription($id: ID!) { serverConsole(serverId: $id) { stream line } }",
    variables: { id: server.id },
  });
  const answered = (async () => {
    for await (const { data, errors } of lines) {
      if (errors) throw new Error(errors[0].message);
      console.log(`[${data.serverConsole.stream}] ${data.serverConsole.line}`);
      if (data.serverConsole.line === "you said: hello") return;
    }
  })();

  await request("mutation($id: ID!) { startServer(id: $id) { state } }", { id: server.id });
  // STARTING until the program prints its READY line (the template's ready check).
  for (let state = "STARTING"; state !== "RUNNING"; ) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    ({ server: { state } } = await request("query($id: ID!) { server(id: $id) { state } }", { id: server.id }));
    console.log(`state: ${state}`);
    if (state === "CRASHED" || state === "OFFLINE") throw new Error(`the server did not start: ${state}`);
  }
  await request("mutation($id: ID!, $command: String!) { sendServerCommand(id: $id, command: $command) }", {
    id: server.id,
    command: "hello",
  });
  await Promise.race([
    answered,
    new Promise((_, reject) => setTimeout(() => reject(new Error("no answer on the console")), 30_000)),
  ]);
  const { stopServer } = await request("mutation($id: ID!) { stopServer(id: $id) { state } }", { id: server.id });
  console.log(`stop asked: ${stopServer.state}`);
  await lines.return();
} finally {
  await client.dispose();
}

#!/usr/bin/env python3
"""Sign in to a Kutanga Hub, make a game server, start it and talk to its console.

The worked example of docs/api.md, with gql (https://gql.readthedocs.io) as the
graphql-transport-ws client:

    pip install -r docs/examples/requirements.txt
    KUTANGA_EMAIL=admin@localhost.localdomain KUTANGA_PASSWORD=... python3 docs/examples/console.py

KUTANGA_URL (default http://127.0.0.1:8080) names the hub and SERVER_NAME the new server.
The account needs server.create, and template.manage to choose the Custom command's program.
"""

import asyncio
import json
import os
import sys
import urllib.request

from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

HUB = os.environ.get("KUTANGA_URL", "http://127.0.0.1:8080").rstrip("/")
NAME = os.environ.get("SERVER_NAME", "echo-from-python")

LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken }
}"""
TEMPLATES = gql("{ templates { id name } }")
CREATE = gql("""mutation($input: CreateServerInput!) { createServer(input: $input) { id state } }""")
START = gql("mutation($id: ID!) { startServer(id: $id) { state } }")
STATE = gql("query($id: ID!) { server(id: $id) { state } }")
CONSOLE = gql("subscription($id: ID!) { serverConsole(serverId: $id) { stream line } }")
SEND = gql("mutation($id: ID!, $command: String!) { sendServerCommand(id: $id, command: $command) }")
STOP = gql("mutation($id: ID!) { stopServer(id: $id) { state } }")

# A server that says "ready", then answers every line written to it.
PROGRAM = "echo ready; while read line; do echo \"you said: $line\"; done"


def sign_in() -> str:
    """The access token (15 minutes) from `login`, over plain HTTP."""
    body = {"query": LOGIN, "variables": {"email": os.environ["KUTANGA_EMAIL"],
                                          "password": os.environ["KUTANGA_PASSWORD"]}}
    request = urllib.request.Request(f"{HUB}/graphql", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        answer = json.load(response)
    if answer.get("errors"):
        error = answer["errors"][0]
        sys.exit(f"sign-in refused: {error['extensions']['code']}: {error['message']}")
    return answer["data"]["login"]["accessToken"]


async def main() -> None:
    token = sign_in()
    # The token goes in connection_init; the hub closes the socket with 4403 without a valid one.
    transport = WebsocketsTransport(
        url=HUB.replace("http", "ws", 1) + "/graphql/ws",
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport) as session:
        templates = (await session.execute(TEMPLATES))["templates"]
        custom = next(t["id"] for t in templates if t["name"] == "Custom command")
        variables = [
            {"key": "COMMAND", "value": "/bin/sh"},
            {"key": "ARGS", "value": json.dumps(["-c", PROGRAM])},
            {"key": "READY", "value": "ready"},
        ]
        server = (await session.execute(CREATE, variable_values={
            "input": {"name": NAME, "templateId": custom, "variables": variables}}))["createServer"]
        print(f"created {NAME} ({server['id']}): {server['state']}")

        async def follow_console() -> None:
            async for event in session.subscribe(CONSOLE, variable_values={"id": server["id"]}):
                line = event["serverConsole"]
                print(f"[{line['stream']}] {line['line']}")
                if line["line"] == "you said: hello":
                    return

        # The console from the moment the hub takes the subscription on (the lines before it:
        # `server(id:) { consoleTail(lines:) { line } }`).
        console = asyncio.create_task(follow_console())
        await asyncio.sleep(0)
        await session.execute(START, variable_values={"id": server["id"]})
        # STARTING until the program prints its READY line (the template's ready check).
        state = "STARTING"
        while state != "RUNNING":
            await asyncio.sleep(0.5)
            state = (await session.execute(STATE, variable_values={"id": server["id"]}))["server"]["state"]
            print(f"state: {state}")
            if state in ("CRASHED", "OFFLINE"):
                sys.exit(f"the server did not start: {state}")
        await session.execute(SEND, variable_values={"id": server["id"], "command": "hello"})
        await asyncio.wait_for(console, timeout=30)
        stopped = await session.execute(STOP, variable_values={"id": server["id"]})
        print(f"stop asked: {stopped['stopServer']['state']}")


if __name__ == "__main__":
    asyncio.run(main())

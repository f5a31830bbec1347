//! The bad-input catalogue: hostile or malformed input to every mutation, each refused with its
//! error code, and nothing changed in the database or on disk afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Backend, TestHub};
use serde_json::{Value, json};

/// What a refused mutation must leave as it was: every account, role, server, template, rule
/// and invitation, and the files of the game servers.
async fn snapshot(hub: &TestHub, admin: &str) -> (Value, Vec<(String, u64)>) {
    let query = "{ users(first: 100) { id email displayName disabled roles { id } } \
                 roles { id name description permissions } \
                 servers { id name state autoRestart startWithHub memoryLimitMb variables { key value } grants { user { id } permissions } } \
                 templates { id name definition } alertRules { id name metric threshold forSeconds enabled } invitations { id } }";
    let data = hub.gql(Some(admin), query, json!({})).await;
    assert!(data["errors"].is_null(), "{data}");
    let mut files = Vec::new();
    walk(&hub.data_dir().join("servers"), &hub.data_dir(), &mut files);
    files.sort();
    (data["data"].clone(), files)
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = entry.metadata().unwrap();
        // Console logs grow on their own; what a mutation could write is everything else.
        if path.extension().is_some_and(|x| x == "log") {
            continue;
        }
        out.push((path.strip_prefix(root).unwrap().display().to_string(), if meta.is_dir() { 0 } else { meta.len() }));
        if meta.is_dir() {
            walk(&path, root, out);
        }
    }
}

const SLEEPER: &str = "name = \"Sleeper\"\nexecutable = \"/bin/sleep\"\nargs = [\"{{SECONDS}}\"]\n\
                       [[variables]]\nkey = \"SECONDS\"\ndefault = \"300\"\nrule = { integer = { min = 1, max = 3600 } }\n";

async fn hostile_input_is_refused_and_changes_nothing(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let server = hub.create_server_from(&admin, "victim", SLEEPER).await;
    let _user = hub.user_with_roles("someone@example.org", &["User"]).await;
    let user_id =
        hub.gql(Some(&admin), "{ users(search: \"someone\") { id } }", json!({})).await["data"]["users"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let role = hub
        .gql(
            Some(&admin),
            "mutation { createRole(name: \"Helpers\", permissions: [\"server.read\"]) { id } }",
            json!({}),
        )
        .await["data"]["createRole"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let template = hub.gql(Some(&admin), "{ templates { id name } }", json!({})).await["data"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Sleeper")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = snapshot(&hub, &admin).await;

    let long = "x".repeat(10_000);
    let bidi = "admin\u{202e}gpj.exe";
    let nul = "a\u{0}b";
    let create_server = "mutation($i: CreateServerInput!) { createServer(input: $i) { id } }";
    let update_server = "mutation($id: ID!, $i: UpdateServerInput!) { updateServer(id: $id, input: $i) { id } }";
    let create_user = "mutation($e: String!, $p: String!, $n: String, $r: [ID!]) { createUser(email: $e, password: $p, displayName: $n, roleIds: $r) { id } }";
    let update_user =
        "mutation($id: ID!, $n: String, $d: Boolean) { updateUser(id: $id, displayName: $n, disabled: $d) { id } }";
    let create_role = "mutation($n: String!, $d: String, $p: [String!]!) { createRole(name: $n, description: $d, permissions: $p) { id } }";
    let update_role =
        "mutation($id: ID!, $n: String, $p: [String!]) { updateRole(id: $id, name: $n, permissions: $p) { id } }";
    let grant =
        "mutation($s: ID!, $u: ID!, $p: [String!]!) { grantServerAccess(serverId: $s, userId: $u, permissions: $p) }";
    let template_doc = "mutation($d: String!) { createTemplate(definition: $d) { id } }";
    let update_template = "mutation($id: ID!, $d: String!) { updateTemplate(id: $id, definition: $d) { id } }";
    let rule = "mutation($i: AlertRuleInput!) { createAlertRule(input: $i) { id } }";
    let invite = "mutation($e: String, $r: ID) { createInvitation(email: $e, roleId: $r) { id } }";
    let command = "mutation($id: ID!, $c: String!) { sendServerCommand(id: $id, command: $c) }";
    let id_only = |op: &str| format!("mutation($id: ID!) {{ {op}(id: $id) }}");
    let server_input =
        |name: &str, vars: Value| json!({ "i": { "name": name, "templateId": template, "variables": vars } });
    let rule_input = |name: &str, metric: &str, threshold: Value, secs: Value, hook: Value| json!({ "i": { "name": name, "metric": metric, "threshold": threshold, "forSeconds": secs, "webhookUrl": hook } });

    // (what it tries, the document, its variables, the expected code). An id in the input that
    // names nothing is bad input on its field; an id the operation acts on is NOT_FOUND.. An id in the input that
    // names nothing is bad input on its field; an id the operation acts on is NOT_FOUND.
    let cases: Vec<(&str, String, Value, &str)> = vec![
        // Servers: names, variables, limits, ids.
        ("empty server name", create_server.into(), server_input("", json!([])), "BAD_USER_INPUT"),
        ("blank server name", create_server.into(), server_input("   ", json!([])), "BAD_USER_INPUT"),
        ("overlong server name", create_server.into(), server_input(&long, json!([])), "BAD_USER_INPUT"),
        ("control characters in a name", create_server.into(), server_input("a\nb", json!([])), "BAD_USER_INPUT"),
        ("NUL in a name", create_server.into(), server_input(nul, json!([])), "BAD_USER_INPUT"),
        ("bidi override in a name", create_server.into(), server_input(bidi, json!([])), "BAD_USER_INPUT"),
        ("duplicate server name", create_server.into(), server_input("victim", json!([])), "CONFLICT"),
        (
            "shell in a variable",
            create_server.into(),
            server_input("s1", json!([{ "key": "SECONDS", "value": "5; rm -rf /" }])),
            "BAD_USER_INPUT",
        ),
        (
            "negative variable",
            create_server.into(),
            server_input("s2", json!([{ "key": "SECONDS", "value": "-5" }])),
            "BAD_USER_INPUT",
        ),
        (
            "huge variable",
            create_server.into(),
            server_input("s3", json!([{ "key": "SECONDS", "value": "99999999999999999999" }])),
            "BAD_USER_INPUT",
        ),
        (
            "unknown variable",
            create_server.into(),
            server_input("s4", json!([{ "key": "NOPE", "value": "1" }])),
            "BAD_USER_INPUT",
        ),
        (
            "duplicate variable",
            create_server.into(),
            server_input("s5", json!([{ "key": "SECONDS", "value": "1" }, { "key": "SECONDS", "value": "2" }])),
            "BAD_USER_INPUT",
        ),
        (
            "newline in a variable",
            create_server.into(),
            server_input("s6", json!([{ "key": "SECONDS", "value": "1\n2" }])),
            "BAD_USER_INPUT",
        ),
        (
            "unknown template",
            create_server.into(),
            json!({ "i": { "name": "s7", "templateId": "999999" } }),
            "BAD_USER_INPUT",
        ),
        (
            "template id not a number",
            create_server.into(),
            json!({ "i": { "name": "s8", "templateId": "1 OR 1=1" } }),
            "BAD_USER_INPUT",
        ),
        (
            "negative memory limit",
            create_server.into(),
            json!({ "i": { "name": "s9", "templateId": template, "memoryLimitMb": -1 } }),
            "BAD_USER_INPUT",
        ),
        (
            "huge memory limit",
            create_server.into(),
            json!({ "i": { "name": "s10", "templateId": template, "memoryLimitMb": 2_000_000_000 } }),
            "BAD_USER_INPUT",
        ),
        (
            "name of the wrong type",
            create_server.into(),
            json!({ "i": { "name": 5, "templateId": template } }),
            "BAD_USER_INPUT",
        ),
        ("missing template field", create_server.into(), json!({ "i": { "name": "s11" } }), "BAD_USER_INPUT"),
        ("rename to empty", update_server.into(), json!({ "id": server, "i": { "name": "" } }), "BAD_USER_INPUT"),
        (
            "rename with a bidi isolate",
            update_server.into(),
            json!({ "id": server, "i": { "name": "victim\u{2067}x" } }),
            "BAD_USER_INPUT",
        ),
        (
            "role name with a zero-width space",
            create_role.into(),
            json!({ "n": "Ad\u{200b}min", "p": [] }),
            "BAD_USER_INPUT",
        ),
        (
            "bad variable on update",
            update_server.into(),
            json!({ "id": server, "i": { "variables": [{ "key": "SECONDS", "value": "$(id)" }] } }),
            "BAD_USER_INPUT",
        ),
        (
            "update of a missing server",
            update_server.into(),
            json!({ "id": "999999", "i": { "name": "x" } }),
            "NOT_FOUND",
        ),
        ("server id with SQL", id_only("deleteServer"), json!({ "id": "1; DROP TABLE servers" }), "BAD_USER_INPUT"),
        ("server id negative", id_only("deleteServer"), json!({ "id": "-1" }), "NOT_FOUND"),
        ("command to a stopped server", command.into(), json!({ "id": server, "c": "say hi" }), "CONFLICT"),
        ("command with a newline", command.into(), json!({ "id": server, "c": "say hi\nstop" }), "BAD_USER_INPUT"),
        ("overlong command", command.into(), json!({ "id": server, "c": long }), "BAD_USER_INPUT"),
        // Users.
        (
            "email without an at",
            create_user.into(),
            json!({ "e": "not-an-email", "p": "a long enough passphrase" }),
            "BAD_USER_INPUT",
        ),
        (
            "email with a newline",
            create_user.into(),
            json!({ "e": "a@b.org\nBcc: c@d.org", "p": "a long enough passphrase" }),
            "BAD_USER_INPUT",
        ),
        (
            "overlong email",
            create_user.into(),
            json!({ "e": format!("{long}@example.org"), "p": "a long enough passphrase" }),
            "BAD_USER_INPUT",
        ),
        ("empty email", create_user.into(), json!({ "e": "", "p": "a long enough passphrase" }), "BAD_USER_INPUT"),
        (
            "existing email",
            create_user.into(),
            json!({ "e": "someone@example.org", "p": "a long enough passphrase" }),
            "CONFLICT",
        ),
        (
            "existing email, other case",
            create_user.into(),
            json!({ "e": "SOMEONE@Example.org", "p": "a long enough passphrase" }),
            "CONFLICT",
        ),
        ("short password", create_user.into(), json!({ "e": "new1@example.org", "p": "short" }), "BAD_USER_INPUT"),
        (
            "common password",
            create_user.into(),
            json!({ "e": "new2@example.org", "p": "password123456" }),
            "BAD_USER_INPUT",
        ),
        ("huge password", create_user.into(), json!({ "e": "new3@example.org", "p": long }), "BAD_USER_INPUT"),
        (
            "unknown role",
            create_user.into(),
            json!({ "e": "new4@example.org", "p": "a long enough passphrase", "r": ["999999"] }),
            "BAD_USER_INPUT",
        ),
        (
            "role id not a number",
            create_user.into(),
            json!({ "e": "new5@example.org", "p": "a long enough passphrase", "r": ["x"] }),
            "BAD_USER_INPUT",
        ),
        (
            "overlong display name",
            create_user.into(),
            json!({ "e": "new6@example.org", "p": "a long enough passphrase", "n": long }),
            "BAD_USER_INPUT",
        ),
        (
            "display name with control characters",
            update_user.into(),
            json!({ "id": user_id, "n": "evil\u{7}\u{1b}[2J" }),
            "BAD_USER_INPUT",
        ),
        ("update of a missing user", update_user.into(), json!({ "id": "999999", "n": "x" }), "NOT_FOUND"),
        ("user id with SQL", id_only("deleteUser"), json!({ "id": "' OR '1'='1" }), "BAD_USER_INPUT"),
        // Roles.
        ("empty role name", create_role.into(), json!({ "n": "", "p": [] }), "BAD_USER_INPUT"),
        ("overlong role name", create_role.into(), json!({ "n": long, "p": [] }), "BAD_USER_INPUT"),
        ("existing role name", create_role.into(), json!({ "n": "Helpers", "p": [] }), "CONFLICT"),
        ("built-in role name", create_role.into(), json!({ "n": "Admin", "p": [] }), "CONFLICT"),
        ("unknown permission", create_role.into(), json!({ "n": "R1", "p": ["server.everything"] }), "BAD_USER_INPUT"),
        ("permission with SQL", create_role.into(), json!({ "n": "R2", "p": ["server.read'; --"] }), "BAD_USER_INPUT"),
        (
            "duplicate permissions",
            update_role.into(),
            json!({ "id": role, "p": ["server.read", "nope.nope"] }),
            "BAD_USER_INPUT",
        ),
        ("rename to an existing role", update_role.into(), json!({ "id": role, "n": "User" }), "CONFLICT"),
        ("delete a missing role", id_only("deleteRole"), json!({ "id": "999999" }), "NOT_FOUND"),
        // Grants.
        (
            "grant of an unknown key",
            grant.into(),
            json!({ "s": server, "u": user_id, "p": ["server.own"] }),
            "BAD_USER_INPUT",
        ),
        (
            "grant of a global key",
            grant.into(),
            json!({ "s": server, "u": user_id, "p": ["user.manage"] }),
            "BAD_USER_INPUT",
        ),
        (
            "grant on a missing server",
            grant.into(),
            json!({ "s": "999999", "u": user_id, "p": ["server.start"] }),
            "NOT_FOUND",
        ),
        (
            "grant to a missing user",
            grant.into(),
            json!({ "s": server, "u": "999999", "p": ["server.start"] }),
            "BAD_USER_INPUT",
        ),
        // Templates.
        ("template that is not TOML", template_doc.into(), json!({ "d": "{{{" }), "BAD_USER_INPUT"),
        (
            "template with a relative program",
            template_doc.into(),
            json!({ "d": "name = \"T1\"\nexecutable = \"sh\"" }),
            "BAD_USER_INPUT",
        ),
        (
            "template writing outside its folder",
            template_doc.into(),
            json!({ "d": "name = \"T2\"\nexecutable = \"/bin/true\"\n[[files]]\npath = \"../../x\"\ncontent = \"\"" }),
            "BAD_USER_INPUT",
        ),
        (
            "template with an absolute file",
            template_doc.into(),
            json!({ "d": "name = \"T3\"\nexecutable = \"/bin/true\"\n[[files]]\npath = \"/etc/cron.d/x\"\ncontent = \"\"" }),
            "BAD_USER_INPUT",
        ),
        (
            "template with an unknown key",
            template_doc.into(),
            json!({ "d": "name = \"T4\"\nexecutable = \"/bin/true\"\nshell = true" }),
            "BAD_USER_INPUT",
        ),
        (
            "template with a duplicate key",
            template_doc.into(),
            json!({ "d": "name = \"T5\"\nname = \"T6\"\nexecutable = \"/bin/true\"" }),
            "BAD_USER_INPUT",
        ),
        (
            "template program from a name",
            template_doc.into(),
            json!({ "d": "name = \"T7\"\nexecutable = \"{{SERVER_NAME}}\"" }),
            "BAD_USER_INPUT",
        ),
        (
            "template over 64 KiB",
            template_doc.into(),
            json!({ "d": format!("name = \"T8\"\nexecutable = \"/bin/true\"\n#{}", "x".repeat(70_000)) }),
            "BAD_USER_INPUT",
        ),
        (
            "template with an existing name",
            template_doc.into(),
            json!({ "d": "name = \"Sleeper\"\nexecutable = \"/bin/true\"" }),
            "CONFLICT",
        ),
        (
            "built-in template changed",
            update_template.into(),
            json!({ "id": "1", "d": "name = \"Custom command\"\nexecutable = \"/bin/true\"" }),
            "CONFLICT",
        ),
        ("template in use deleted", id_only("deleteTemplate"), json!({ "id": template }), "CONFLICT"),
        // Alert rules.
        (
            "rule on an unknown metric",
            rule.into(),
            rule_input("r1", "cpu.everything", json!(1.0), json!(0), Value::Null),
            "BAD_USER_INPUT",
        ),
        (
            "rule with a negative duration",
            rule.into(),
            rule_input("r2", "cpu.percent", json!(1.0), json!(-5), Value::Null),
            "BAD_USER_INPUT",
        ),
        (
            "rule with a huge duration",
            rule.into(),
            rule_input("r3", "cpu.percent", json!(1.0), json!(2_000_000_000), Value::Null),
            "BAD_USER_INPUT",
        ),
        (
            "rule webhook to a file",
            rule.into(),
            rule_input("r4", "cpu.percent", json!(1.0), json!(0), json!("file:///etc/passwd")),
            "BAD_USER_INPUT",
        ),
        (
            "rule webhook not a URL",
            rule.into(),
            rule_input("r5", "cpu.percent", json!(1.0), json!(0), json!("javascript:alert(1)")),
            "BAD_USER_INPUT",
        ),
        (
            "rule with an empty name",
            rule.into(),
            rule_input("", "cpu.percent", json!(1.0), json!(0), Value::Null),
            "BAD_USER_INPUT",
        ),
        (
            "rule threshold of the wrong type",
            rule.into(),
            rule_input("r6", "cpu.percent", json!("high"), json!(0), Value::Null),
            "BAD_USER_INPUT",
        ),
        (
            "acknowledge a missing alert",
            id_only("acknowledgeAlert").replace(") }", ") { id } }"),
            json!({ "id": "999999" }),
            "NOT_FOUND",
        ),
        // Invitations and sessions.
        ("invitation for a bad email", invite.into(), json!({ "e": "nobody" }), "BAD_USER_INPUT"),
        ("invitation with an unknown role", invite.into(), json!({ "r": "999999" }), "BAD_USER_INPUT"),
        ("end a missing session", id_only("endSession"), json!({ "id": "999999" }), "NOT_FOUND"),
    ];
    assert!(cases.len() >= 60, "the catalogue holds {} inputs", cases.len());
    let mut wrong = Vec::new();
    for (what, doc, vars, expected) in &cases {
        let res = hub.gql(Some(&admin), doc, vars.clone()).await;
        let got = res["errors"][0]["extensions"]["code"].as_str().unwrap_or("<no error>");
        if got != *expected {
            wrong.push(format!("{what}: expected {expected}, got {got}: {res}"));
        }
    }
    assert!(wrong.is_empty(), "{} of {} answered otherwise:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    let after = snapshot(&hub, &admin).await;
    assert_eq!(after.0, before.0, "the database changed");
    assert_eq!(after.1, before.1, "the servers' files changed");
    hub.stop().await;
}

on_both!(hostile_input_is_refused_and_changes_nothing);

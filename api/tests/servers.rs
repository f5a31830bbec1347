//! Templates and server records through the real API: the built-in templates, creating servers
//! with their folders, hostile variable values, ports, and deleting without escaping the folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestHub, code};
use serde_json::{Value, json};

const CREATE: &str = "mutation($i: CreateServerInput!) { createServer(input: $i) { id name state port variables { key value } template { name } } }";

async fn template_id(hub: &TestHub, token: &str, name: &str) -> String {
    let res = hub.gql(Some(token), "{ templates { id name } }", json!({})).await;
    res["data"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("{res}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn folder(hub: &TestHub, id: &str) -> std::path::PathBuf {
    hub.data_dir().join("servers").join(id)
}

async fn count_servers(hub: &TestHub) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    entity::game_server::Entity::find().count(hub.app.services.db.conn()).await.unwrap()
}

async fn the_built_in_templates_are_listed(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let user = hub.user_with_roles("u@hub.test", &["User"]).await;
    let res =
        hub.gql(Some(&user), "{ templates { name builtIn variables { key default required rule } } }", json!({})).await;
    let names: Vec<&str> =
        res["data"]["templates"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Custom command", "Freeciv", "Luanti (Minetest)", "Teeworlds"]);
    let luanti =
        res["data"]["templates"].as_array().unwrap().iter().find(|t| t["name"] == "Luanti (Minetest)").unwrap();
    assert_eq!(luanti["builtIn"], true);
    assert_eq!(
        luanti["variables"][0],
        json!({ "key": "PORT", "default": "30000", "required": true, "rule": "port (1024-65535)" })
    );
    let store = hub.stop().await;
    // A second start loads nothing again.
    let hub = TestHub::start_with(store, &[]).await;
    let admin = hub.admin_token().await;
    let seeded = hub
        .gql(Some(&admin), "{ auditLog(first: 500, filter: { action: \"seed.template\" }) { id } }", json!({}))
        .await;
    assert_eq!(seeded["data"]["auditLog"].as_array().unwrap().len(), 4);
    hub.stop().await;
}

async fn a_server_gets_its_folder_and_files(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let luanti = template_id(&hub, &admin, "Luanti (Minetest)").await;
    let res = hub
        .gql(
            Some(&admin),
            CREATE,
            json!({ "i": { "name": "World One", "templateId": luanti, "variables": [{ "key": "PORT", "value": "30100" }, { "key": "MOTD", "value": "Hi; $(id) `x`" }] } }),
        )
        .await;
    let server = &res["data"]["createServer"];
    assert_eq!(server["state"], "OFFLINE", "{res}");
    assert_eq!(server["port"], 30100);
    assert_eq!(server["template"]["name"], "Luanti (Minetest)");
    assert_eq!(
        server["variables"],
        json!([{ "key": "GAME", "value": "minetest" }, { "key": "MOTD", "value": "Hi; $(id) `x`" }, { "key": "PORT", "value": "30100" }])
    );
    let id = server["id"].as_str().unwrap();
    let conf = std::fs::read_to_string(folder(&hub, id).join("minetest.conf")).unwrap();
    assert!(conf.contains("motd = Hi; $(id) `x`\n"), "{conf}");

    // Freeciv's files include a folder.
    let freeciv = template_id(&hub, &admin, "Freeciv").await;
    let res = hub.gql(Some(&admin), CREATE, json!({ "i": { "name": "Civ", "templateId": freeciv } })).await;
    let id = res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("{res}"));
    assert!(folder(&hub, id).join("saves/.keep").is_file());
    // The same port twice: CONFLICT naming the variable.
    let res = hub
        .gql(Some(&admin), CREATE, json!({ "i": { "name": "Civ 2", "templateId": freeciv, "variables": [{ "key": "PORT", "value": "5556" }] } }))
        .await;
    assert_eq!((code(&res), res["errors"][0]["extensions"]["field"].as_str()), ("CONFLICT", Some("variables.PORT")));
    // The same name twice.
    let res = hub
        .gql(
            Some(&admin),
            CREATE,
            json!({ "i": { "name": "Civ", "templateId": freeciv, "variables": [{ "key": "PORT", "value": "5557" }] } }),
        )
        .await;
    assert_eq!((code(&res), res["errors"][0]["extensions"]["field"].as_str()), ("CONFLICT", Some("name")));
    hub.stop().await;
}

async fn hostile_variable_values_are_refused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let teeworlds = template_id(&hub, &admin, "Teeworlds").await;
    let before = count_servers(&hub).await;
    for (key, value) in [
        ("PORT", "8303 --evil"),
        ("PORT", "; rm -rf /"),
        ("PORT", "$(id)"),
        ("PORT", "8303\nsv_rcon_password x"),
        ("PORT", "80"),
        ("NAME", "x\nsv_rcon_password owned"),
        ("NAME", "a;b"),
        ("GAMETYPE", "race"),
        ("MAX_PLAYERS", "1000"),
        ("NOPE", "1"),
    ] {
        let vars =
            json!({ "i": { "name": "Bad", "templateId": teeworlds, "variables": [{ "key": key, "value": value }] } });
        let res = hub.gql(Some(&admin), CREATE, vars).await;
        assert_eq!(code(&res), "BAD_USER_INPUT", "{key}={value:?}: {res}");
        assert_eq!(res["errors"][0]["extensions"]["field"], format!("variables.{key}"), "{res}");
    }
    assert_eq!(count_servers(&hub).await, before, "nothing was stored");
    assert!(
        !hub.data_dir().join("servers").exists()
            || std::fs::read_dir(hub.data_dir().join("servers")).unwrap().count() == 0
    );

    // The custom command is set only by holders of template.manage.
    let res = hub
        .gql(
            Some(&admin),
            "mutation { createRole(name: \"Creator\", permissions: [\"server.create\", \"server.read\"]) { id } }",
            json!({}),
        )
        .await;
    assert!(res["errors"].is_null(), "{res}");
    let creator = hub.user_with_roles("creator@hub.test", &["Creator"]).await;
    let custom = template_id(&hub, &admin, "Custom command").await;
    let vars = json!({ "i": { "name": "Shell", "templateId": custom, "variables": [{ "key": "COMMAND", "value": "/bin/sh" }] } });
    assert_eq!(code(&hub.gql(Some(&creator), CREATE, vars.clone()).await), "FORBIDDEN");
    let res = hub.gql(Some(&admin), CREATE, vars).await;
    assert!(res["errors"].is_null(), "{res}");
    // A user without server.create cannot create at all.
    let user = hub.user_with_roles("u@hub.test", &["User"]).await;
    let res = hub.gql(Some(&user), CREATE, json!({ "i": { "name": "Mine", "templateId": teeworlds } })).await;
    assert_eq!(code(&res), "FORBIDDEN");
    hub.stop().await;
}

async fn update_and_delete_stay_in_the_folder(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let teeworlds = template_id(&hub, &admin, "Teeworlds").await;
    let res = hub.gql(Some(&admin), CREATE, json!({ "i": { "name": "Tee", "templateId": teeworlds } })).await;
    let id = res["data"]["createServer"]["id"].as_str().unwrap().to_owned();
    let upd = "mutation($id: ID!, $i: UpdateServerInput!) { updateServer(id: $id, input: $i) { name port autoRestart variables { key value } } }";
    let res = hub
        .gql(Some(&admin), upd, json!({ "id": id, "i": { "name": "Tee 2", "autoRestart": false, "variables": [{ "key": "PORT", "value": "8400" }] } }))
        .await;
    assert_eq!(res["data"]["updateServer"]["name"], "Tee 2", "{res}");
    assert_eq!(res["data"]["updateServer"]["port"], 8400);
    assert_eq!(res["data"]["updateServer"]["autoRestart"], false);
    let res =
        hub.gql(Some(&admin), upd, json!({ "id": id, "i": { "variables": [{ "key": "PORT", "value": "x" }] } })).await;
    assert_eq!(code(&res), "BAD_USER_INPUT");

    // A symlink inside the folder to a file outside: deleting the server removes the link only.
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let dir = folder(&hub, &id);
    std::os::unix::fs::symlink(outside.path(), dir.join("escape")).unwrap();
    std::os::unix::fs::symlink(&precious, dir.join("precious-link")).unwrap();
    let res = hub.gql(Some(&admin), "mutation($id: ID!) { deleteServer(id: $id) }", json!({ "id": id })).await;
    assert_eq!(res["data"]["deleteServer"], true, "{res}");
    assert!(!dir.exists(), "the folder is gone");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me", "the outside file is untouched");
    let res = hub.gql(Some(&admin), "query($id: ID!) { server(id: $id) { id } }", json!({ "id": id })).await;
    assert_eq!(res["data"]["server"], Value::Null);
    hub.stop().await;
}

const TEMPLATE: &str = r#"
name = "Sleeper"
executable = "/bin/sleep"
args = ["{{SECONDS}}"]
[[variables]]
key = "SECONDS"
default = "60"
rule = { integer = { min = 1, max = 3600 } }
"#;

async fn templates_are_managed_by_their_holders(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let admin = hub.admin_token().await;
    let moderator = hub.user_with_roles("mod@hub.test", &["Moderator"]).await;
    let create = "mutation($d: String!) { createTemplate(definition: $d) { id name builtIn variables { key rule } } }";
    assert_eq!(code(&hub.gql(Some(&moderator), create, json!({ "d": TEMPLATE })).await), "FORBIDDEN");
    let res = hub.gql(Some(&admin), create, json!({ "d": TEMPLATE })).await;
    let tpl = res["data"]["createTemplate"].clone();
    assert_eq!(tpl["variables"], json!([{ "key": "SECONDS", "rule": "integer 1..3600" }]), "{res}");
    let bad = hub
        .gql(Some(&admin), create, json!({ "d": "name = \"X\"\nexecutable = \"/bin/true\"\nargs = [\"{{NOPE}}\"]" }))
        .await;
    assert_eq!((code(&bad), bad["errors"][0]["extensions"]["field"].as_str()), ("BAD_USER_INPUT", Some("definition")));
    assert!(bad["errors"][0]["message"].as_str().unwrap().contains("unknown placeholder"));
    // Built-in templates are read-only.
    let luanti = template_id(&hub, &admin, "Luanti (Minetest)").await;
    let upd = "mutation($id: ID!, $d: String!) { updateTemplate(id: $id, definition: $d) { id } }";
    assert_eq!(code(&hub.gql(Some(&admin), upd, json!({ "id": luanti, "d": TEMPLATE })).await), "CONFLICT");
    // In use: cannot be deleted.
    let res = hub.gql(Some(&admin), CREATE, json!({ "i": { "name": "Nap", "templateId": tpl["id"] } })).await;
    let server = res["data"]["createServer"]["id"].as_str().unwrap_or_else(|| panic!("{res}")).to_owned();
    let del = "mutation($id: ID!) { deleteTemplate(id: $id) }";
    assert_eq!(code(&hub.gql(Some(&admin), del, json!({ "id": tpl["id"] })).await), "CONFLICT");
    hub.gql(Some(&admin), "mutation($id: ID!) { deleteServer(id: $id) }", json!({ "id": server })).await;
    assert_eq!(hub.gql(Some(&admin), del, json!({ "id": tpl["id"] })).await["data"]["deleteTemplate"], true);
    hub.stop().await;
}

/// Lists are answered again from what was kept for the same session and document: every change
/// must show at once all the same, to the session that made it and to everyone else.
async fn a_list_read_again_shows_every_change(backend: Backend) {
    // Samples are stored every second: writes no kept answer reads, which do not count.
    let hub = TestHub::start_with(common::Store::new(backend).await, &["--metrics-interval", "1"]).await;
    let admin = hub.admin_token().await;
    let user = hub.user_with_roles("u@hub.test", &["User"]).await;
    let moderator = hub.user_with_roles("m@hub.test", &["Moderator"]).await;
    let list = "{ servers { id name } }";
    let names = |res: Value| -> Vec<String> {
        let servers = res["data"]["servers"].as_array().unwrap_or_else(|| panic!("{res}")).clone();
        servers.iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
    };
    let luanti = template_id(&hub, &admin, "Luanti (Minetest)").await;
    let res = hub.gql(Some(&admin), CREATE, json!({ "i": { "name": "Alpha", "templateId": luanti } })).await;
    let id = res["data"]["createServer"]["id"].as_str().unwrap().to_owned();
    let version = hub.app.services.db.commits();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert_eq!(hub.app.services.db.commits(), version, "the samples stored meanwhile do not count");
    assert_eq!(names(hub.gql(Some(&admin), list, json!({})).await), ["Alpha"]);
    // The user sees nothing, whatever the admin's answer was.
    assert!(names(hub.gql(Some(&user), list, json!({})).await).is_empty());

    // The answer is kept: a write behind the hub's back (another process) is not seen at once,
    // and is within two seconds.
    let version = hub.app.services.db.commits();
    common::sql(&hub, &format!("UPDATE game_servers SET name = 'Alpha 2' WHERE id = {id}")).await;
    let again = names(hub.gql(Some(&admin), list, json!({})).await);
    // Unless some background work of the hub committed meanwhile (then it was read afresh).
    if hub.app.services.db.commits() == version {
        assert_eq!(again, ["Alpha"], "kept");
    }
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(names(hub.gql(Some(&admin), list, json!({})).await), ["Alpha 2"]);

    // A change through the hub is seen by the next read of whoever made it ...
    let rename = "mutation($id: ID!, $n: String!) { updateServer(id: $id, input: { name: $n }) { id } }";
    hub.gql(Some(&admin), rename, json!({ "id": id, "n": "Beta" })).await;
    assert_eq!(names(hub.gql(Some(&admin), list, json!({})).await), ["Beta"]);
    // ... a grant by the next read of whoever it concerns ...
    let user_id = hub.gql(Some(&user), "{ me { id } }", json!({})).await["data"]["me"]["id"].clone();
    let grant =
        "mutation($s: ID!, $u: ID!) { grantServerAccess(serverId: $s, userId: $u, permissions: [\"server.read\"]) }";
    let res = hub.gql(Some(&admin), grant, json!({ "s": id, "u": user_id })).await;
    assert_eq!(res["data"]["grantServerAccess"], true, "{res}");
    assert_eq!(names(hub.gql(Some(&user), list, json!({})).await), ["Beta"]);
    // ... and a role taken away by the next read of whoever lost it.
    assert_eq!(names(hub.gql(Some(&moderator), list, json!({})).await), ["Beta"]);
    let roles = hub.gql(Some(&admin), "{ roles { id name } }", json!({})).await;
    let user_role =
        roles["data"]["roles"].as_array().unwrap().iter().find(|r| r["name"] == "User").unwrap()["id"].clone();
    let moderator_id = hub.gql(Some(&moderator), "{ me { id } }", json!({})).await["data"]["me"]["id"].clone();
    let set = "mutation($u: ID!, $r: [ID!]!) { setUserRoles(userId: $u, roleIds: $r) { id } }";
    let res = hub.gql(Some(&admin), set, json!({ "u": moderator_id, "r": [user_role] })).await;
    assert!(res["errors"].is_null(), "{res}");
    assert!(names(hub.gql(Some(&moderator), list, json!({})).await).is_empty());
    // The same document with other variables is another question.
    let one = "query($id: ID!) { server(id: $id) { name } }";
    assert_eq!(hub.gql(Some(&admin), one, json!({ "id": id })).await["data"]["server"]["name"], "Beta");
    assert_eq!(hub.gql(Some(&admin), one, json!({ "id": "999999" })).await["data"]["server"], Value::Null);
    hub.stop().await;
}

on_both!(
    the_built_in_templates_are_listed,
    a_server_gets_its_folder_and_files,
    hostile_variable_values_are_refused,
    update_and_delete_stay_in_the_folder,
    templates_are_managed_by_their_holders,
    a_list_read_again_shows_every_change,
);

//! The exported SDL at the repository root stays in step with the code and the contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");

#[test]
fn schema_graphql_is_up_to_date() {
    let on_disk = std::fs::read_to_string(SCHEMA_FILE).expect("schema.graphql exists at the repository root");
    assert!(on_disk == kutanga::sdl(), "schema.graphql is stale: run `cargo xtask schema` and commit the result");
}

/// The operations of ../shared/api-contract.graphql that this hub serves so far, with the
/// contract's argument shapes.
#[test]
fn the_served_operations_match_the_contract() {
    // Every field on one line, `Type.name(arg: Type, ...): Type`, as the contract writes them
    // (the SDL puts described arguments on lines of their own).
    let mut signatures = Vec::new();
    for ty in types() {
        let fields = match &ty.kind {
            TypeKind::Object(o) => &o.fields,
            TypeKind::Interface(i) => &i.fields,
            _ => continue,
        };
        for field in fields {
            let f = &field.node;
            signatures.push(format!("{}.{}", ty.name.node, signature(f)));
        }
    }
    for needle in [
        "Query.hubInfo: HubInfo!",
        "Query.me: User!",
        "Query.roles: [Role!]!",
        "Query.permissions: [Permission!]!",
        "Query.auditLog(filter: AuditFilter, first: Int, after: String): [AuditEntry!]!",
        "Mutation.login(email: String!, password: String!): AuthPayload!",
        "Subscription.auditEvents(filter: AuditFilter): AuditEntry!",
        "HubInfo.registrationOpen: Boolean!",
        "AuthPayload.accessTokenExpiresAt: DateTime!",
    ] {
        assert!(signatures.iter().any(|s| s == needle), "the schema lacks `{needle}`");
    }
    let sdl = kutanga::sdl();
    for ty in ["type User", "type Role", "type Permission", "type AuthPayload", "type AuditEntry", "input AuditFilter"]
    {
        assert!(sdl.contains(ty), "the schema lacks `{ty}`");
    }
}

/// Every type, field, argument, input field and enum value of the schema says what it is: the
/// API reference (docs/api-reference.md) is made from these descriptions.
#[test]
fn everything_in_the_schema_is_described() {
    let mut missing = Vec::new();
    for ty in types() {
        let name = ty.name.node.as_str();
        if ty.description.is_none() {
            missing.push(format!("type {name}"));
        }
        match &ty.kind {
            TypeKind::Object(o) => fields(name, &o.fields, &mut missing),
            TypeKind::Interface(i) => fields(name, &i.fields, &mut missing),
            TypeKind::InputObject(i) => inputs(name, &i.fields, &mut missing),
            TypeKind::Enum(e) => missing.extend(
                e.values
                    .iter()
                    .filter(|v| v.node.description.is_none())
                    .map(|v| format!("{name}.{}", v.node.value.node)),
            ),
            TypeKind::Scalar | TypeKind::Union(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "{} parts of the schema have no description (a `///` comment, or `#[graphql(desc = \"...\")]` on an \
         argument): {missing:#?}",
        missing.len()
    );

    fn fields(ty: &str, fields: &[Positioned<FieldDefinition>], missing: &mut Vec<String>) {
        for field in fields {
            let name = format!("{ty}.{}", field.node.name.node);
            inputs(&name, &field.node.arguments, missing);
            if field.node.description.is_none() {
                missing.push(name);
            }
        }
    }
    fn inputs(owner: &str, values: &[Positioned<InputValueDefinition>], missing: &mut Vec<String>) {
        missing.extend(
            values.iter().filter(|v| v.node.description.is_none()).map(|v| format!("{owner}({})", v.node.name.node)),
        );
    }
}

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api-reference.md");

/// docs/api-reference.md is the schema as the hub serves it, written out for people.
#[test]
fn the_api_reference_is_up_to_date() {
    let page = reference();
    if std::env::var_os("KUTANGA_UPDATE_DOCS").is_some() {
        std::fs::write(REFERENCE, &page).unwrap();
    }
    let on_disk = std::fs::read_to_string(REFERENCE).unwrap_or_default();
    assert!(
        on_disk == page,
        "docs/api-reference.md is stale: run `KUTANGA_UPDATE_DOCS=1 cargo nextest run -p kutanga --test schema` and \
         commit the result"
    );
}

use async_graphql::parser::{
    Positioned, parse_schema,
    types::{FieldDefinition, InputValueDefinition, TypeDefinition, TypeKind, TypeSystemDefinition},
};

/// The schema's named types, sorted by name.
fn types() -> Vec<TypeDefinition> {
    let document = parse_schema(kutanga::sdl()).expect("the SDL parses");
    let mut types: Vec<TypeDefinition> = document
        .definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some(t.node),
            _ => None,
        })
        .collect();
    types.sort_by(|a, b| a.name.node.cmp(&b.name.node));
    types
}

/// The reference page: the operations by kind, then every type.
fn reference() -> String {
    let types = types();
    let roots = [("Query", "Queries"), ("Mutation", "Mutations"), ("Subscription", "Subscriptions")];
    let mut page = String::from(
        "# GraphQL API reference\n\n\
         <!-- Generated from the hub's schema by api/tests/schema.rs: `KUTANGA_UPDATE_DOCS=1 cargo nextest run -p \
         kutanga --test schema` writes it anew. Do not edit by hand. -->\n\n\
         Every operation and type the hub serves at `POST /graphql` and on the WebSocket at `/graphql/ws`, with \
         the descriptions the schema carries (the same text GraphiQL shows). [The API guide](api.md) explains \
         sign-in, errors and subscriptions with worked examples; [`schema.graphql`](../schema.graphql) is the \
         schema itself. Times (`DateTime`) are RFC 3339 in UTC; ids (`ID`) are strings of digits.\n\n",
    );
    for (_, title) in roots {
        page.push_str(&format!("- [{title}](#{})\n", title.to_lowercase()));
    }
    page.push_str("- [Types](#types)\n");
    for (root, title) in roots {
        let Some(ty) = types.iter().find(|t| t.name.node == root) else { continue };
        let TypeKind::Object(object) = &ty.kind else { continue };
        page.push_str(&format!("\n## {title}\n"));
        for field in &object.fields {
            let f = &field.node;
            page.push_str(&format!("\n### {}\n\n", f.name.node));
            page.push_str(&format!("```graphql\n{}\n```\n\n", signature(f)));
            page.push_str(&paragraph(f.description.as_ref()));
            page.push_str(&format!("\nReturns {}.\n", type_link(&f.ty.node.to_string(), &types)));
            if !f.arguments.is_empty() {
                page.push_str("\n| Argument | Type | Description |\n|---|---|---|\n");
                for arg in &f.arguments {
                    page.push_str(&input_row(&arg.node, &types));
                }
            }
        }
    }
    page.push_str("\n## Types\n");
    for ty in types.iter().filter(|t| !roots.iter().any(|(root, _)| t.name.node == *root)) {
        let rows = match &ty.kind {
            TypeKind::Scalar => String::new(),
            TypeKind::Object(o) => field_rows(&o.fields, &types),
            TypeKind::Interface(i) => field_rows(&i.fields, &types),
            TypeKind::Union(u) => format!(
                "\nOne of: {}.\n",
                u.members.iter().map(|m| type_link(&m.node, &types)).collect::<Vec<_>>().join(", ")
            ),
            TypeKind::Enum(e) => std::iter::once("\n| Value | Description |\n|---|---|\n".to_owned())
                .chain(
                    e.values
                        .iter()
                        .map(|v| format!("| `{}` | {} |\n", v.node.value.node, cell(v.node.description.as_ref()))),
                )
                .collect(),
            TypeKind::InputObject(i) => std::iter::once("\n| Field | Type | Description |\n|---|---|---|\n".to_owned())
                .chain(i.fields.iter().map(|f| input_row(&f.node, &types)))
                .collect(),
        };
        // The kind in the heading keeps a type's anchor apart from an operation's (`user` and
        // `User (object)`).
        page.push_str(&format!("\n### {} ({})\n\n", ty.name.node, kind(ty)));
        page.push_str(&paragraph(ty.description.as_ref()));
        page.push_str(&rows);
    }
    page
}

fn field_rows(fields: &[Positioned<FieldDefinition>], types: &[TypeDefinition]) -> String {
    let mut rows = String::from("\n| Field | Type | Description |\n|---|---|---|\n");
    for field in fields {
        let f = &field.node;
        let args: Vec<String> = f
            .arguments
            .iter()
            .map(|a| {
                let default = a.node.default_value.as_ref().map(|d| format!(" = {}", d.node)).unwrap_or_default();
                format!("`{}: {}{default}`: {}", a.node.name.node, a.node.ty.node, cell(a.node.description.as_ref()))
            })
            .collect();
        let args = if args.is_empty() { String::new() } else { format!("<br>Arguments: {}", args.join("; ")) };
        rows.push_str(&format!(
            "| `{}` | {} | {}{args} |\n",
            f.name.node,
            type_link(&f.ty.node.to_string(), types),
            cell(f.description.as_ref())
        ));
    }
    rows
}

fn input_row(value: &InputValueDefinition, types: &[TypeDefinition]) -> String {
    let default = value.default_value.as_ref().map(|d| format!(" (default `{}`)", d.node)).unwrap_or_default();
    format!(
        "| `{}` | {} | {}{default} |\n",
        value.name.node,
        type_link(&value.ty.to_string(), types),
        cell(value.description.as_ref())
    )
}

/// A field on one line: `name(arg: Type, ...): Type`.
fn signature(f: &FieldDefinition) -> String {
    let args: Vec<String> = f.arguments.iter().map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node)).collect();
    let args = if args.is_empty() { String::new() } else { format!("({})", args.join(", ")) };
    format!("{}{args}: {}", f.name.node, f.ty.node)
}

fn kind(ty: &TypeDefinition) -> &'static str {
    match ty.kind {
        TypeKind::Scalar => "scalar",
        TypeKind::Object(_) => "object",
        TypeKind::Interface(_) => "interface",
        TypeKind::Union(_) => "union",
        TypeKind::Enum(_) => "enum",
        TypeKind::InputObject(_) => "input",
    }
}

/// A type as written (`[GameServer!]!`), linked to its section when the schema defines it.
fn type_link(written: &str, types: &[TypeDefinition]) -> String {
    let named = written.trim_matches(|c| c == '[' || c == ']' || c == '!');
    match types.iter().find(|t| t.name.node == named) {
        Some(ty) => format!("[`{written}`](#{}-{})", named.to_lowercase(), kind(ty)),
        None => format!("`{written}`"),
    }
}

/// A description as a paragraph.
fn paragraph(description: Option<&Positioned<String>>) -> String {
    description.map(|d| format!("{}\n", d.node.trim())).unwrap_or_default()
}

/// A description in one table cell.
fn cell(description: Option<&Positioned<String>>) -> String {
    description.map(|d| d.node.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")).unwrap_or_default()
}

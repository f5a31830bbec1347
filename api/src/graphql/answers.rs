//! Answers kept for the next identical question.
//!
//! A query that reads only stored data (the fields named in [`STORED`]) gives the same session
//! the same answer for as long as nothing is written. Such answers are kept, serialised, and
//! sent again to the same session asking the same document with the same variables, until any
//! write transaction of the hub commits ([`Db::commits`](crate::db::Db::commits); the metric
//! history's writes do not count, no kept answer reads them) or [`MAX_AGE`]
//! passes (the safety net for writes from outside the process, such as `kutanga admin`). A
//! client that changes something and reads it back sees its change: the commit happens before
//! the mutation answers. A list of 100 servers costs the engine about 300 fields resolved one by
//! one; a kept answer costs a look-up.
//!
//! Only fields known to read nothing but the database and the caller's session are listed: a
//! field that reads the host (files, processes, the clock) makes its whole document be run
//! every time. A field added to a listed type is not kept until it is listed here.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_graphql::{
    Request, Response,
    parser::types::{
        BaseType, ExecutableDocument, OperationType, Selection, SelectionSet, TypeKind, TypeSystemDefinition,
    },
};
use axum::body::Bytes;

use shared::Permission;

use super::observe::{self, Label};
use crate::auth::Caller;

/// The fields whose answers are functions of the database and the session alone, by type.
/// `GameServer.consoleTail` (the lines a running game printed, in memory) and
/// `Template.warnings` (the host's files) are left out on purpose.
pub const STORED: &[(&str, &[&str])] = &[
    ("Query", &["servers", "server"]),
    (
        "GameServer",
        &[
            "id",
            "name",
            "template",
            "state",
            "pid",
            "port",
            "variables",
            "autoRestart",
            "startWithHub",
            "memoryLimitMb",
            "createdAt",
            "startedAt",
            "lastExitCode",
            "grants",
            "stateHistory",
            "myPermissions",
        ],
    ),
    ("ServerVariable", &["key", "value"]),
    ("ServerStateEvent", &["serverId", "state", "at", "message"]),
    ("ServerGrant", &["user", "permissions"]),
    ("Grantee", &["id", "email", "displayName"]),
    ("Template", &["id", "name", "description", "variables", "definition", "builtIn"]),
    ("TemplateVariable", &["key", "description", "default", "required", "editable", "privileged", "rule", "ruleSpec"]),
    ("VariableRule", &["kind", "min", "max", "options", "pattern"]),
];

/// How long a kept answer may be sent again at most, written or not.
pub const MAX_AGE: Duration = Duration::from_secs(2);
/// Beyond this many answers the store starts over rather than grow.
const MAX_ANSWERS: usize = 4_096;
/// Beyond this many bytes in all (answers and the questions they answer) the store starts over
/// rather than grow.
const MAX_BYTES: usize = 32 << 20;
/// A longer question (document and variables) is not kept.
const MAX_QUESTION_BYTES: usize = 8 << 10;
/// A longer answer is not kept.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Fragments nest at most this deep in a document that is kept (validation, which would refuse
/// a cycle, runs later than this look).
const MAX_NESTING: usize = 32;

/// The listed fields, with the type each one answers with.
#[derive(Debug, Default)]
pub struct Shape(HashMap<String, HashMap<String, String>>);

impl Shape {
    /// The listed fields as the schema (its SDL) types them. A listed type or field the schema
    /// does not have is left out.
    pub fn of(sdl: &str) -> Self {
        let mut shape = HashMap::new();
        let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
            return Self(shape);
        };
        for def in doc.definitions {
            let TypeSystemDefinition::Type(ty) = def else { continue };
            let TypeKind::Object(object) = &ty.node.kind else { continue };
            let name = ty.node.name.node.as_str();
            let Some((_, listed)) = STORED.iter().find(|(t, _)| *t == name) else { continue };
            let fields: HashMap<String, String> = object
                .fields
                .iter()
                .filter(|f| listed.contains(&f.node.name.node.as_str()))
                .map(|f| {
                    let mut base = &f.node.ty.node.base;
                    while let BaseType::List(inner) = base {
                        base = &inner.base;
                    }
                    let BaseType::Named(of) = base else { unreachable!("lists were unwrapped") };
                    (f.node.name.node.to_string(), of.to_string())
                })
                .collect();
            shape.insert(name.to_owned(), fields);
        }
        Self(shape)
    }

    /// Whether the operation a request runs is a query that selects listed fields only. The
    /// request's document must have been parsed already (the limits check does).
    pub fn stored_only(&self, request: &mut Request) -> bool {
        observe::operation(request).is_some_and(|(doc, op)| {
            op.ty == OperationType::Query && self.selects_stored(doc, "Query", &op.selection_set.node, 0)
        })
    }

    fn selects_stored(&self, doc: &ExecutableDocument, ty: &str, set: &SelectionSet, nesting: usize) -> bool {
        if nesting > MAX_NESTING {
            return false;
        }
        set.items.iter().all(|item| match &item.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                if name == "__typename" {
                    return true;
                }
                match self.0.get(ty).and_then(|fields| fields.get(name)) {
                    Some(of) => self.selects_stored(doc, of, &f.node.selection_set.node, nesting + 1),
                    None => false,
                }
            }
            Selection::FragmentSpread(spread) => {
                doc.fragments.get(&spread.node.fragment_name.node).is_some_and(|fragment| {
                    fragment.node.type_condition.node.on.node == ty
                        && self.selects_stored(doc, ty, &fragment.node.selection_set.node, nesting + 1)
                })
            }
            Selection::InlineFragment(inline) => {
                inline.node.type_condition.as_ref().is_none_or(|c| c.node.on.node == ty)
                    && self.selects_stored(doc, ty, &inline.node.selection_set.node, nesting + 1)
            }
        })
    }
}

/// A question: who asks, and exactly what.
#[derive(Debug, PartialEq, Eq)]
pub struct Question {
    hash: u64,
    session_id: i64,
    user_id: i64,
    permissions: Vec<Permission>,
    query: String,
    operation: Option<String>,
    variables: String,
}

impl Question {
    /// The question a request asks for a caller; None when it is too long to be kept, or
    /// names a mutation or subscription (only queries are kept; this look spares a mutation the
    /// copy of its document, and a query that merely contains the word is only run afresh).
    pub fn of(caller: &Caller, request: &Request) -> Option<Self> {
        let query = &request.query;
        if query.len() > MAX_QUESTION_BYTES || query.contains("mutation") || query.contains("subscription") {
            return None;
        }
        let variables = serde_json::to_string(&request.variables).ok()?;
        if request.query.len() + variables.len() > MAX_QUESTION_BYTES {
            return None;
        }
        let mut question = Self {
            hash: 0,
            session_id: caller.session_id,
            user_id: caller.user_id,
            permissions: caller.permissions.iter().copied().collect(),
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables,
        };
        let mut h = DefaultHasher::new();
        (question.session_id, question.user_id, &question.permissions).hash(&mut h);
        (&question.query, &question.operation, &question.variables).hash(&mut h);
        question.hash = h.finish();
        Some(question)
    }

    /// What keeping it costs, roughly.
    fn bytes(&self) -> usize {
        size_of::<Kept>() + self.query.len() + self.variables.len() + self.operation.as_ref().map_or(0, String::len)
    }
}

/// An answer kept, serialised, with the label it is counted by.
#[derive(Debug)]
pub struct Kept {
    question: Question,
    at: Instant,
    pub json: Bytes,
    pub label: Label,
}

#[derive(Debug, Default)]
pub struct Answers {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// The version of the data every kept answer was read at.
    version: u64,
    answers: HashMap<u64, Arc<Kept>>,
    bytes: usize,
}

impl Answers {
    /// The answer kept for the question, if nothing was committed since it was read (the data
    /// is at `version` now).
    pub fn get(&self, question: &Question, version: u64) -> Option<Arc<Kept>> {
        let (kept, forgotten) = {
            let mut entries = self.entries.lock().ok()?;
            let forgotten = entries.forget_before(version);
            let kept = entries.answers.get(&question.hash).cloned();
            (kept, forgotten)
        };
        // Dropped here, outside the lock.
        drop(forgotten);
        kept.filter(|kept| kept.question == *question && kept.at.elapsed() < MAX_AGE)
    }

    /// Keeps an answer read with the data at `version`, unless something was committed since
    /// (`now` is the version after it was read) or it is too long; returns it serialised anyway.
    pub fn keep(&self, question: Question, version: u64, now: u64, label: Label, response: &Response) -> Option<Bytes> {
        let json = Bytes::from(serde_json::to_vec(response).ok()?);
        let cost = question.bytes() + json.len();
        if version != now || json.len() > MAX_ANSWER_BYTES {
            return Some(json);
        }
        let kept = Arc::new(Kept { at: Instant::now(), json: json.clone(), label, question });
        let mut forgotten = HashMap::new();
        let mut replaced = None;
        if let Ok(mut entries) = self.entries.lock() {
            forgotten = entries.forget_before(version);
            if entries.version == version {
                if entries.answers.len() >= MAX_ANSWERS || entries.bytes + cost > MAX_BYTES {
                    forgotten = std::mem::take(&mut entries.answers);
                    entries.bytes = 0;
                }
                entries.bytes += cost;
                replaced = entries.answers.insert(kept.question.hash, kept);
                if let Some(old) = &replaced {
                    entries.bytes -= old.question.bytes() + old.json.len();
                }
            }
        }
        drop((forgotten, replaced));
        Some(json)
    }
}

impl Entries {
    /// Forgets the answers read before `version`; returns them, to be dropped outside the lock.
    fn forget_before(&mut self, version: u64) -> HashMap<u64, Arc<Kept>> {
        if version <= self.version {
            return HashMap::new();
        }
        self.version = version;
        self.bytes = 0;
        std::mem::take(&mut self.answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Who;

    fn shape() -> Shape {
        Shape::of(&crate::graphql::sdl())
    }

    fn stored_only(query: &str) -> bool {
        let mut request = Request::new(query);
        shape().stored_only(&mut request)
    }

    #[test]
    fn every_listed_field_is_in_the_schema() {
        let shape = shape();
        for (ty, fields) in STORED {
            let known = shape.0.get(*ty).unwrap_or_else(|| panic!("{ty} is not an object type of the schema"));
            for field in *fields {
                assert!(known.contains_key(*field), "{ty}.{field} is not in the schema");
            }
        }
    }

    #[test]
    fn only_documents_of_listed_fields_are_kept() {
        assert!(stored_only("{ servers { id name state } }"));
        assert!(stored_only("query Q { servers { ...F template { name } } } fragment F on GameServer { id port }"));
        assert!(stored_only("{ server(id: 1) { __typename ... on GameServer { stateHistory { state at } } } }"));
        // The console is in memory, warnings come from the host, hubInfo from the clock.
        assert!(!stored_only("{ servers { id consoleTail { line } } }"));
        assert!(!stored_only("{ servers { template { warnings } } }"));
        assert!(!stored_only("{ servers { id } hubInfo { version } }"));
        assert!(!stored_only("mutation { deleteServer(id: 1) }"));
        assert!(!stored_only("query A { servers { id } } query B { servers { name } }"));
        assert!(!stored_only("{ servers { ...F } } fragment F on Template { id }"));
        assert!(!stored_only("{ servers { ...F } } fragment F on GameServer { ...F }"));
        assert!(!stored_only("{ servers { id"));
    }

    fn question(session_id: i64, query: &str) -> Question {
        let caller = Caller::from(Who {
            user_id: 7,
            session_id,
            email: "u@x.org".into(),
            permissions: [Permission::ServerRead].into(),
            session_expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        });
        Question::of(&caller, &Request::new(query)).unwrap()
    }

    fn label() -> Label {
        ("query", "servers".to_owned())
    }

    #[test]
    fn an_answer_is_given_again_to_its_session_until_a_commit() {
        let answers = Answers::default();
        let response = Response::new(async_graphql::Value::from("a"));
        answers.keep(question(1, "{ servers { id } }"), 5, 5, label(), &response);
        assert!(answers.get(&question(1, "{ servers { id } }"), 5).is_some());
        assert!(answers.get(&question(2, "{ servers { id } }"), 5).is_none(), "another session");
        assert!(answers.get(&question(1, "{ servers { name } }"), 5).is_none(), "another document");
        assert!(answers.get(&question(1, "{ servers { id } }"), 6).is_none(), "a commit since");
        assert!(answers.get(&question(1, "{ servers { id } }"), 5).is_none(), "forgotten for good");
    }

    #[test]
    fn a_long_question_or_other_keys_are_other_questions() {
        let caller = |permissions: &[Permission]| {
            Caller::from(Who {
                user_id: 7,
                session_id: 1,
                email: "u@x.org".into(),
                permissions: permissions.iter().copied().collect(),
                session_expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
            })
        };
        let padded = format!("{{ servers {{ id }} }} #{}", "x".repeat(MAX_QUESTION_BYTES));
        assert!(Question::of(&caller(&[]), &Request::new(padded)).is_none());
        let mutation = Request::new("mutation { logout }");
        assert!(Question::of(&caller(&[]), &mutation).is_none(), "a mutation is never a question");
        let (a, b) = (Request::new("{ servers { id } }"), Request::new("{ servers { id } }"));
        assert_ne!(Question::of(&caller(&[]), &a), Question::of(&caller(&[Permission::ServerRead]), &b));
        assert_eq!(Question::of(&caller(&[]), &a), Question::of(&caller(&[]), &b));
    }

    #[test]
    fn an_answer_read_across_a_commit_is_not_kept() {
        let answers = Answers::default();
        let response = Response::new(async_graphql::Value::from("a"));
        let json = answers.keep(question(1, "{ servers { id } }"), 5, 6, label(), &response);
        assert_eq!(json.as_deref(), Some(&b"{\"data\":\"a\"}"[..]));
        assert!(answers.get(&question(1, "{ servers { id } }"), 5).is_none());
    }
}

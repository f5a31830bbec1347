//! What every GraphQL operation goes through around the schema, over HTTP and WebSocket alike:
//! a socket's caller loaded afresh, the document's limits, error codes, the count for
//! `/metrics` and the suspicious-activity watcher.
//!
//! These steps wrap the schema as an [`Executor`] rather than living in async-graphql
//! extensions: with any extension installed the engine runs every field of every object through
//! the extensions' chain (and a registry look-up for the field's type), which is most of what a
//! long list or a subscription sample costs beyond its own data. Only batches keep one
//! extension, to share one complexity budget between their operations.
//!
//! A single query over HTTP that reads stored data only may be answered from the answers kept
//! for its session ([`answers`](super::answers)).

use std::{any::TypeId, sync::Arc};

use async_graphql::{
    BatchRequest, BatchResponse, Data, Executor, Request, Response, ServerError, dataloader::DataLoader,
    futures_util::stream::BoxStream,
};
use futures_util::{
    StreamExt,
    stream::{self, FuturesOrdered},
};
use shared::Suspicion;

use super::{
    HubSchema, Limits, RequestInfo,
    answers::{Answers, Question, Shape},
    errors::{refused, with_codes},
    limits::{BatchBudgets, DocumentLimits},
    observe::{self, Label},
    schema_builder,
    socket::SocketSession,
    users,
};
use crate::app::Services;

/// The hub's GraphQL executor.
#[derive(Clone)]
pub struct Engine {
    /// The schema without extensions: the engine's fast path for every field.
    schema: HubSchema,
    /// The same schema with the batch budget, for the operations of a batch.
    batches: HubSchema,
    limits: DocumentLimits,
    services: Services,
    /// The fields whose answers may be kept, and the answers kept.
    shape: Arc<Shape>,
    answers: Arc<Answers>,
}

/// An answer to a single request over HTTP.
pub enum Answer {
    /// Run now.
    Ran(Response),
    /// Kept from an earlier identical question, or run now and kept: the JSON of a successful
    /// response.
    Json(axum::body::Bytes),
}

impl Engine {
    pub fn new(services: Services, limits: Limits) -> Self {
        let schema = |budget: bool| {
            let mut builder = schema_builder()
                .limit_depth(limits.depth)
                .limit_complexity(limits.complexity)
                .limit_recursive_depth(limits.recursion)
                .data(DataLoader::new(users::Loader(services.db.clone()), tokio::spawn))
                .data(services.clone());
            if budget {
                builder = builder.extension(BatchBudgets);
            }
            if !limits.introspection {
                builder = builder.disable_introspection().disable_suggestions();
            }
            builder.finish()
        };
        let plain = schema(false);
        Self {
            shape: Arc::new(Shape::of(&plain.sdl())),
            schema: plain,
            batches: schema(true),
            limits: DocumentLimits { nesting: limits.recursion, fields: limits.complexity },
            answers: Arc::default(),
            services,
        }
    }

    /// The version of the stored data: read it before the request's caller is resolved and give
    /// it to [`Self::answer`], so that nothing read before a commit is kept as of after it. A
    /// caller resolved with roles that have since changed holds other keys than the caller after
    /// the change, and the keys are part of the question: its answer is never theirs.
    pub fn data_version(&self) -> u64 {
        self.services.db.commits()
    }

    /// A single request over HTTP, whose caller was resolved with the data at `version` or later:
    /// the answer kept for its session and question when there is one, else run (and kept when
    /// it may be).
    pub async fn answer(&self, request: Request, version: u64) -> Answer {
        let question = data_of::<RequestInfo>(&request.data)
            .and_then(|r| r.caller.as_ref())
            .and_then(|caller| Question::of(caller, &request));
        let Some(question) = question else {
            return Answer::Ran(self.run(&self.schema, request).await);
        };
        if let Some(kept) = self.answers.get(&question, self.data_version()) {
            let (kind, operation) = &kept.label;
            self.services.stats.graphql_operation(kind, operation, "ok");
            return Answer::Json(kept.json.clone());
        }
        let (label, keep, response) = self.execute_on(&self.schema, request, Some(&self.shape)).await;
        match label {
            Some(label) if keep && response.errors.is_empty() => {
                match self.answers.keep(question, version, self.data_version(), label, &response) {
                    Some(json) => Answer::Json(json),
                    None => Answer::Ran(response),
                }
            }
            _ => Answer::Ran(response),
        }
    }

    /// Runs one query or mutation on `schema`.
    async fn run(&self, schema: &HubSchema, request: Request) -> Response {
        self.execute_on(schema, request, None).await.2
    }

    /// Runs one query or mutation on `schema`, coded and counted; with a `shape`, also tells
    /// whether it selected listed fields only (its answer may be kept).
    async fn execute_on(
        &self,
        schema: &HubSchema,
        mut request: Request,
        shape: Option<&Shape>,
    ) -> (Option<Label>, bool, Response) {
        let ip = client_ip(&request.data);
        let (label, keep, response) = match self.limits.check(&mut request) {
            Ok(()) => {
                let label = observe::label(&mut request);
                let keep = shape.is_some_and(|shape| shape.stored_only(&mut request));
                (label, keep, schema.execute(request).await)
            }
            Err(e) => (None, false, Response::from_errors(vec![e])),
        };
        let response = self.answered(response, ip.as_deref());
        self.count(label.as_ref(), "unknown", &response);
        (label, keep, response)
    }

    /// Every answer: each error with a code, a FORBIDDEN one told to the watcher.
    fn answered(&self, response: Response, ip: Option<&str>) -> Response {
        let response = with_codes(response);
        if refused(&response) {
            self.services.alerts.suspicious(Suspicion::Forbidden, ip);
        }
        response
    }

    /// Counts an operation by its answer: by its root fields when it ran, as `invalid` (of kind
    /// `unknown`) when it never did.
    fn count(&self, label: Option<&Label>, unknown: &'static str, response: &Response) {
        let (kind, operation) = match label {
            Some((kind, operation)) if ran(response) => (*kind, operation.as_str()),
            _ => (unknown, "invalid"),
        };
        self.services.stats.graphql_operation(kind, operation, &observe::outcome(response));
    }

    /// An operation sent on a WebSocket (any type), authorised as its socket's session is now,
    /// counted by its first answer; the open-subscriptions gauge counts it while it runs.
    async fn stream(self, mut request: Request, session: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let open = self.services.stats.subscription_opened();
        let socket = session.as_deref().and_then(data_of::<Arc<SocketSession>>).cloned();
        let prepared = match socket {
            Some(socket) => match socket.caller_now(&self.services).await {
                Ok(caller) => {
                    request.data.insert(RequestInfo { caller: Some(caller), client: socket.client().clone() });
                    self.limits.check(&mut request)
                }
                Err(e) => Err(e.server_error()),
            },
            None => self.limits.check(&mut request),
        };
        let ip = client_ip(&request.data);
        let (label, responses) = match prepared {
            Ok(()) => (
                observe::label(&mut request),
                self.schema.execute_stream_with_session_data(request, session.unwrap_or_default()),
            ),
            Err(e) => (None, stream::once(async move { Response::from_errors(vec![e]) }).boxed()),
        };
        let mut uncounted = Some(label);
        responses
            .map(move |response| {
                let _open = &open;
                let response = self.answered(response, ip.as_deref());
                if let Some(label) = uncounted.take() {
                    self.count(label.as_ref(), "subscription", &response);
                }
                response
            })
            .boxed()
    }
}

impl Executor for Engine {
    async fn execute(&self, request: Request) -> Response {
        self.run(&self.schema, request).await
    }

    async fn execute_batch(&self, batch: BatchRequest) -> BatchResponse {
        match batch {
            BatchRequest::Single(request) => BatchResponse::Single(self.run(&self.schema, request).await),
            BatchRequest::Batch(requests) => BatchResponse::Batch(
                requests
                    .into_iter()
                    .map(|request| self.run(&self.batches, request))
                    .collect::<FuturesOrdered<_>>()
                    .collect()
                    .await,
            ),
        }
    }

    fn execute_stream(&self, request: Request, session: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        // Boxed, so that the preparation's state is freed once it is done, not kept inline in
        // every subscription's stream for as long as it runs.
        stream::once(Box::pin(self.clone().stream(request, session))).flatten().boxed()
    }
}

fn data_of<T: 'static>(data: &Data) -> Option<&T> {
    data.get(&TypeId::of::<T>()).and_then(|d| d.downcast_ref::<T>())
}

fn client_ip(data: &Data) -> Option<String> {
    data_of::<RequestInfo>(data).and_then(|r| r.client.ip.clone())
}

/// Whether the operation ran: an answer with no data and only errors without a path never got
/// past parsing, validation or the limits.
pub fn ran(response: &Response) -> bool {
    !(response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e: &ServerError| e.path.is_empty()))
}

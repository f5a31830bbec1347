//! Webhook delivery of alert changes: a generic JSON body, or the bodies Discord and Slack
//! accept, posted with a timeout and retried with backoff in the background. Only http and https
//! URLs are accepted, only public addresses are reached (see [`super::target`]), and a redirect
//! is followed only to the same host (at most three times): a webhook can never be bounced to an
//! address the rule's author did not name. A failure without an HTTP answer is told the same way
//! whatever its cause, so that deliveries cannot map which ports answer where.

use std::{str::FromStr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::{alert, alert_rule};
use reqwest::{Url, redirect};
use serde_json::{Value, json};

use super::target::Targets;
use crate::error::ApiError;

/// The shape of a webhook's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Generic,
    Discord,
    Slack,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Discord => "discord",
            Self::Slack => "slack",
        }
    }

    /// Discord's and Slack's webhook hosts get their own body; anything else the generic one.
    pub fn guess(url: &Url) -> Self {
        match url.host_str().unwrap_or_default() {
            h if h == "discord.com" || h.ends_with(".discord.com") || h == "discordapp.com" => Self::Discord,
            "hooks.slack.com" => Self::Slack,
            _ => Self::Generic,
        }
    }
}

impl FromStr for WebhookFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "generic" => Ok(Self::Generic),
            "discord" => Ok(Self::Discord),
            "slack" => Ok(Self::Slack),
            other => Err(format!("unknown webhook format `{other}`")),
        }
    }
}

/// Checks a webhook URL: http or https, with a host, at most 2048 characters.
pub fn validate_url(raw: &str) -> Result<Url, ApiError> {
    let bad = |why: &str| ApiError::bad_input("webhookUrl", format!("a webhook URL {why}"));
    if raw.len() > 2048 {
        return Err(bad("has at most 2048 characters"));
    }
    let url = Url::parse(raw).map_err(|e| bad(&format!("is a full http:// or https:// URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("starts with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("names a host"));
    }
    Ok(url)
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct Delivery {
    client: reqwest::Client,
    /// Attempts after the first.
    retries: u32,
    /// The wait before the first retry; doubled for each next one.
    backoff: Duration,
    targets: Targets,
}

impl Delivery {
    pub fn new(timeout: Duration, retries: u32, backoff: Duration, targets: Targets) -> Result<Self, reqwest::Error> {
        let literal = targets.clone();
        let policy = redirect::Policy::custom(move |attempt| {
            if !literal.permits_literal(attempt.url()) {
                return attempt.stop();
            }
            let first = attempt.previous().first().cloned();
            let same_host = first.as_ref().is_some_and(|f| {
                f.host_str() == attempt.url().host_str()
                    && f.port_or_known_default() == attempt.url().port_or_known_default()
                    && (f.scheme() == attempt.url().scheme() || attempt.url().scheme() == "https")
            });
            if attempt.previous().len() > 3 || !same_host { attempt.stop() } else { attempt.follow() }
        });
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(policy)
            .dns_resolver(Arc::new(targets.clone()))
            .no_proxy()
            .user_agent(concat!("kutanga-hub/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, retries, backoff, targets })
    }

    pub fn targets(&self) -> &Targets {
        &self.targets
    }

    /// Posts `body` until a 2xx answer or the retries run out; the error of the last attempt.
    pub async fn post(&self, url: &str, body: &Value) -> Result<u32, String> {
        let mut wait = self.backoff;
        let mut attempt = 1;
        let allowed = Url::parse(url).is_ok_and(|u| self.targets.permits_literal(&u));
        loop {
            let err = match allowed {
                false => NO_ANSWER.to_owned(),
                true => match self.client.post(url).json(body).send().await {
                    Ok(res) if res.status().is_success() => return Ok(attempt),
                    Ok(res) if res.status().is_redirection() => {
                        format!("HTTP {} (a redirect to another host is not followed)", res.status().as_u16())
                    }
                    Ok(res) => format!("HTTP {}", res.status().as_u16()),
                    Err(e) => {
                        tracing::debug!(error = %without_url(&e), "a webhook delivery failed");
                        NO_ANSWER.to_owned()
                    }
                },
            };
            if attempt > self.retries {
                return Err(format!("{err} (after {attempt} attempt{})", if attempt == 1 { "" } else { "s" }));
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
            attempt += 1;
        }
    }
}

/// What every failure without an HTTP answer says: timeouts, refused connections, forbidden or
/// unresolvable addresses alike.
const NO_ANSWER: &str = "no HTTP answer (the host is unreachable, refused, not allowed or too slow)";

/// A reqwest error without the URL (it may carry a token).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<webhook>");
    }
    text
}

/// What a webhook tells.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub hub: &'a str,
    pub rule: &'a alert_rule::Model,
    pub alert: &'a alert::Model,
    /// The server's name when the alert is about a server.
    pub server: Option<&'a str>,
    /// A chart of the metric around the alert, when the hub can link one.
    pub chart_url: Option<String>,
}

impl Notice<'_> {
    fn headline(&self) -> String {
        let what = match (self.server, self.alert.server_id) {
            (Some(name), _) => format!("{} on {name}", self.rule.name),
            (None, Some(id)) => format!("{} on server {id}", self.rule.name),
            (None, None) => match &self.alert.subject {
                Some(who) => format!("{} from {who}", self.rule.name),
                None => self.rule.name.clone(),
            },
        };
        let state = if self.alert.state == super::FIRING { "FIRING" } else { "RESOLVED" };
        format!("[{state}] {what}")
    }

    fn detail(&self) -> String {
        if self.rule.metric == super::SERVER_CRASHED {
            return format!("The server crashed at {}.", stamp(self.alert.started_at));
        }
        if let Some(super::Watch::Suspicion { kind, window, .. }) = super::watch_of(self.rule) {
            let who = self.alert.subject.as_deref().unwrap_or("unknown");
            let mut text = format!(
                "{} {} from {who} within {window} s, since {}.",
                round(self.alert.value),
                kind.words(),
                stamp(self.alert.started_at)
            );
            if let Some(at) = self.alert.resolved_at {
                text.push_str(&format!(" Resolved at {}.", stamp(at)));
            }
            return text;
        }
        let mut text = format!(
            "{} is {} ({} {} for {} s), since {}.",
            self.rule.metric,
            round(self.alert.value),
            self.rule.comparison,
            round(self.rule.threshold),
            self.rule.for_seconds,
            stamp(self.alert.started_at)
        );
        if let Some(at) = self.alert.resolved_at {
            text.push_str(&format!(" Resolved at {}.", stamp(at)));
        }
        text
    }

    /// The body in `format`.
    pub fn body(&self, format: WebhookFormat) -> Value {
        let firing = self.alert.state == super::FIRING;
        match format {
            WebhookFormat::Generic => json!({
                "event": if firing { "alert.firing" } else { "alert.resolved" },
                "hub": self.hub,
                "text": format!("{} {}", self.headline(), self.detail()),
                "alert": {
                    "id": self.alert.id.to_string(),
                    "state": self.alert.state,
                    "value": self.alert.value,
                    "serverId": self.alert.server_id.map(|id| id.to_string()),
                    "subject": self.alert.subject,
                    "startedAt": self.alert.started_at.to_rfc3339(),
                    "resolvedAt": self.alert.resolved_at.map(|t| t.to_rfc3339()),
                },
                "rule": {
                    "id": self.rule.id.to_string(),
                    "name": self.rule.name,
                    "metric": self.rule.metric,
                    "serverId": self.rule.server_id.map(|id| id.to_string()),
                    "comparison": self.rule.comparison,
                    "threshold": self.rule.threshold,
                    "forSeconds": self.rule.for_seconds,
                },
                "chartUrl": self.chart_url,
            }),
            WebhookFormat::Discord => {
                let mut embed = json!({
                    "title": self.headline(),
                    "description": self.detail(),
                    "color": if firing { 0xD9_3025 } else { 0x2E_A043 },
                    "timestamp": self.alert.resolved_at.unwrap_or(self.alert.started_at).to_rfc3339(),
                    "footer": { "text": self.hub },
                });
                if let Some(url) = &self.chart_url {
                    embed["image"] = json!({ "url": url });
                }
                json!({ "username": self.hub, "embeds": [embed] })
            }
            WebhookFormat::Slack => {
                let mut blocks = vec![json!({
                    "type": "section",
                    "text": { "type": "mrkdwn", "text": format!("*{}*\n{}", self.headline(), self.detail()) },
                })];
                if let Some(url) = &self.chart_url {
                    blocks.push(json!({ "type": "image", "image_url": url, "alt_text": self.rule.metric }));
                }
                json!({ "text": format!("{} {}", self.headline(), self.detail()), "blocks": blocks })
            }
        }
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn round(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host_pass() {
        for bad in ["ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)", "not a url", "http://"] {
            let err = validate_url(bad).unwrap_err();
            assert!(matches!(err, ApiError::BadInput { ref field, .. } if field == "webhookUrl"), "{bad}: {err:?}");
        }
        assert!(validate_url("https://hooks.example.com/alert?token=x").is_ok());
        assert!(validate_url(&format!("https://e.com/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn discord_and_slack_are_recognised() {
        let g = |u: &str| WebhookFormat::guess(&Url::parse(u).unwrap());
        assert_eq!(g("https://discord.com/api/webhooks/1/abc"), WebhookFormat::Discord);
        assert_eq!(g("https://hooks.slack.com/services/T/B/x"), WebhookFormat::Slack);
        assert_eq!(g("https://example.com/hook"), WebhookFormat::Generic);
        assert_eq!(round(12.5), "12.5");
        assert_eq!(round(90.0), "90");
    }
}

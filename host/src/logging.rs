//! Log set-up for the commands: `tracing` to stderr, so stdout stays clean for data.
//! Owns the `[logging]` section and its check.
//!
//! The short commands get a fixed text logger ([`init_stderr`]). `gannet run` gets
//! [`init_agent`]: a reloadable level filter and a reloadable [`FormatSwitch`], so SIGHUP
//! changes `logging.level` and `logging.format` live through the returned [`LogReload`].

use std::io::IsTerminal as _;

use anyhow::Context as _;
use tracing::span;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layered, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use serde::{Deserialize, Serialize};

use crate::validate::{invalid, FieldError};

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A level (`info`) or `tracing` directives (`info,gannet::outputs=debug`).
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?}; use text or json")),
        }
    }
}

impl LoggingConfig {
    /// Checks that `level` is a level or a `tracing` directive. Fields are named
    /// relative to the section.
    ///
    /// # Errors
    /// [`FieldError::Invalid`] for a level that does not parse.
    pub fn validate(&self) -> Result<(), FieldError> {
        if EnvFilter::try_new(&self.level).is_err() {
            return Err(invalid(
                "level",
                &self.level,
                "is not a level or tracing directive; use error, warn, info, debug or trace",
            ));
        }
        Ok(())
    }
}

/// True when text logs may carry colour codes: only for a person at a terminal, never in
/// a file, a pipe or journald, and never with `NO_COLOR` set (https://no-color.org).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs a text logger on stderr at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_stderr(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A second init (tests calling twice) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr)
        .try_init();
}

/// The registry under the reloadable level filter: what the format switch sits on.
type Filtered = Layered<reload::Layer<EnvFilter, Registry>, Registry>;

/// A text and a json fmt layer, of which the selected one writes events.
///
/// Both layers see every span, so each has its own formatted span fields whichever is
/// selected when an event comes. That is why the format is not changed by reloading one
/// boxed fmt layer: a json layer swapped in would find spans opened under the text layer
/// without its fields (and tracing-subscriber's json formatter panics on that).
pub struct FormatSwitch<S> {
    text: Box<dyn Layer<S> + Send + Sync>,
    json: Box<dyn Layer<S> + Send + Sync>,
    format: LogFormat,
}

impl<S> FormatSwitch<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    /// Both formats writing to `writer`, `format` selected. Text carries colour codes only
    /// when stderr is a terminal (the agent's writer is stderr).
    pub fn new<W>(format: LogFormat, writer: W) -> Self
    where
        W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
    {
        Self {
            text: tracing_subscriber::fmt::layer()
                .with_ansi(colour())
                .with_writer(writer.clone())
                .boxed(),
            json: tracing_subscriber::fmt::layer()
                .json()
                .with_writer(writer)
                .boxed(),
            format,
        }
    }

    /// Selects the format of the next events.
    pub fn select(&mut self, format: LogFormat) {
        self.format = format;
    }

    fn selected(&self) -> &(dyn Layer<S> + Send + Sync) {
        match self.format {
            LogFormat::Text => &*self.text,
            LogFormat::Json => &*self.json,
        }
    }
}

impl<S> Layer<S> for FormatSwitch<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.text.on_register_dispatch(subscriber);
        self.json.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.text.on_layer(subscriber);
        self.json.on_layer(subscriber);
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.text.on_new_span(attrs, id, ctx.clone());
        self.json.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, span: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.text.on_record(span, values, ctx.clone());
        self.json.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.text.on_follows_from(span, follows, ctx.clone());
        self.json.on_follows_from(span, follows, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.selected().on_event(event, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.text.on_enter(id, ctx.clone());
        self.json.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.text.on_exit(id, ctx.clone());
        self.json.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.text.on_close(id.clone(), ctx.clone());
        self.json.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        self.text.on_id_change(old, new, ctx.clone());
        self.json.on_id_change(old, new, ctx);
    }
}

/// What SIGHUP uses to change the agent's log level and format in place.
pub struct LogReload {
    filter: reload::Handle<EnvFilter, Registry>,
    format: reload::Handle<FormatSwitch<Filtered>, Filtered>,
}

impl LogReload {
    /// Applies `logging.level` and `logging.format`; the next event uses both.
    ///
    /// # Errors
    /// A level that is not a `tracing` directive (validation refuses it first), or a
    /// subscriber that is gone.
    pub fn apply(&self, config: &LoggingConfig) -> anyhow::Result<()> {
        let filter = EnvFilter::try_new(&config.level)
            .with_context(|| format!("logging.level {:?}", config.level))?;
        self.filter
            .reload(filter)
            .context("log level not reloaded")?;
        self.format
            .modify(|switch| switch.select(config.format))
            .context("log format not reloaded")?;
        Ok(())
    }
}

/// The agent's subscriber (level filter, then the format switch) writing to `writer`,
/// and its reload handles.
fn agent_subscriber<W>(
    config: &LoggingConfig,
    writer: W,
) -> anyhow::Result<(impl Subscriber + Send + Sync, LogReload)>
where
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&config.level)
        .with_context(|| format!("logging.level {:?}", config.level))?;
    let (filter, filter_handle) = reload::Layer::new(filter);
    let (switch, format_handle) = reload::Layer::new(FormatSwitch::new(config.format, writer));
    let subscriber = tracing_subscriber::registry().with(filter).with(switch);
    Ok((
        subscriber,
        LogReload {
            filter: filter_handle,
            format: format_handle,
        },
    ))
}

/// Installs the agent's logger on stderr in the configured format and level.
///
/// # Errors
/// A level that is not a `tracing` directive.
pub fn init_agent(config: &LoggingConfig) -> anyhow::Result<LogReload> {
    let (subscriber, reload) = agent_subscriber(config, std::io::stderr)?;
    // A second init (tests) keeps the first subscriber.
    let _ = subscriber.try_init();
    Ok(reload)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer that keeps what it was given, for reading back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn config(format: LogFormat, level: &str) -> LoggingConfig {
        LoggingConfig {
            format,
            level: level.to_string(),
        }
    }

    fn is_json(line: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object())
    }

    #[test]
    fn format_and_level_change_live_even_inside_an_open_span() -> anyhow::Result<()> {
        let buffer = Buffer::default();
        let (subscriber, reload) =
            agent_subscriber(&config(LogFormat::Text, "info"), buffer.clone())?;
        tracing::subscriber::with_default(subscriber, || -> anyhow::Result<()> {
            // A span opened under the text format, still open after the switch.
            let span = tracing::info_span!("output", output = "audit");
            let _entered = span.enter();
            tracing::info!(message = "first", n = 1);
            tracing::debug!(message = "hidden at info");
            reload.apply(&config(LogFormat::Json, "debug"))?;
            tracing::info!(message = "second", n = 2);
            tracing::debug!(message = "shown at debug");
            reload.apply(&config(LogFormat::Text, "info"))?;
            tracing::info!(message = "third", n = 3);
            Ok(())
        })?;
        let lines = buffer.lines();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(
            !is_json(&lines[0]) && lines[0].contains("first"),
            "{lines:#?}"
        );
        let second: serde_json::Value = serde_json::from_str(&lines[1])?;
        assert_eq!(second["fields"]["message"], "second");
        assert_eq!(second["fields"]["n"], 2);
        // The json layer has the span's fields although it opened under text.
        assert_eq!(second["span"]["output"], "audit");
        let debug: serde_json::Value = serde_json::from_str(&lines[2])?;
        assert_eq!(debug["fields"]["message"], "shown at debug");
        assert!(
            !is_json(&lines[3]) && lines[3].contains("third"),
            "{lines:#?}"
        );
        assert!(lines[3].contains("audit"), "{lines:#?}");
        Ok(())
    }

    #[test]
    fn a_bad_level_is_refused_and_changes_nothing() -> anyhow::Result<()> {
        let buffer = Buffer::default();
        let (subscriber, reload) =
            agent_subscriber(&config(LogFormat::Json, "info"), buffer.clone())?;
        tracing::subscriber::with_default(subscriber, || {
            let refused = reload.apply(&config(LogFormat::Text, "loud=[")).is_err();
            tracing::info!(message = "after");
            refused
        })
        .then_some(())
        .context("a bad level must be refused")?;
        let lines = buffer.lines();
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(is_json(&lines[0]), "still json: {lines:#?}");
        Ok(())
    }
}

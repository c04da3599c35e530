//! The error a plugin function returns, so that `?` works on anything displayable.
//!
//! Owns [`Error`], the [`Result`] alias and [`Context`] (saying what failed, on any
//! `Result` or `Option`). The glue turns an `Error` into the WIT `err` string the host logs
//! and counts; it never panics.

use std::fmt;

/// A plugin error: a message for the operator.
///
/// Every type that implements [`Display`](fmt::Display) converts into it, so `?` works on
/// `serde_json`, `regex`, `std::num` errors, `&str` and `String` alike. (That is also why
/// `Error` itself does not implement `Display`: read the text with [`Error::message`].)
///
/// Never put env values or config contents into the message: the host logs it.
///
/// ```
/// use gannet_guest::Result;
///
/// fn replicas(text: &str) -> Result<u32> {
///     let n: u32 = text.parse()?;
///     Ok(n)
/// }
/// assert_eq!(replicas("3").ok(), Some(3));
/// let err = replicas("three").err().map(|e| e.message().to_string());
/// assert_eq!(err.as_deref(), Some("invalid digit found in string"));
/// ```
pub struct Error {
    message: String,
}

/// `Result<T, gannet_guest::Error>`: what plugin functions return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    ///
    /// ```
    /// let err = gannet_guest::Error::msg("label `team` is missing");
    /// assert_eq!(err.message(), "label `team` is missing");
    /// ```
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }

    /// The message.
    ///
    /// ```
    /// assert_eq!(gannet_guest::Error::msg("x").message(), "x");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message, by value.
    ///
    /// ```
    /// assert_eq!(gannet_guest::Error::msg("x").into_message(), "x");
    /// ```
    pub fn into_message(self) -> String {
        self.message
    }

    /// Prefixes the message with `context: `.
    ///
    /// ```
    /// let err = gannet_guest::Error::msg("bad regex").context("config `K8sPodRegex`");
    /// assert_eq!(err.message(), "config `K8sPodRegex`: bad regex");
    /// ```
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
        }
    }
}

impl<E: fmt::Display> From<E> for Error {
    fn from(error: E) -> Self {
        Self::msg(error)
    }
}

/// Says what was being done when something failed: `.context(..)` on any `Result` whose
/// error is displayable, or on an `Option` (where `None` is the failure), gives a
/// [`Result`] whose message starts with that context.
///
/// ```
/// use gannet_guest::{Context, Result};
///
/// fn replicas(text: &str) -> Result<u32> {
///     text.parse::<u32>().context("annotation `replicas`")
/// }
/// let err = replicas("three").err().map(|e| e.into_message());
/// assert_eq!(err.as_deref(), Some("annotation `replicas`: invalid digit found in string"));
///
/// let team: Option<String> = None;
/// let err = team.context("pod label `team` is missing").err().map(|e| e.into_message());
/// assert_eq!(err.as_deref(), Some("pod label `team` is missing"));
/// ```
pub trait Context<T> {
    /// The value, or an [`Error`] prefixed with `context`.
    ///
    /// # Errors
    /// The original error (or `None`) with `context` in front.
    fn context(self, context: impl fmt::Display) -> Result<T>;

    /// Like [`context`](Self::context), building the text only on failure.
    ///
    /// # Errors
    /// As `context`.
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::msg(e).context(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::msg(e).context(context()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| Error::msg(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| Error::msg(context()))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_converts_displayable_errors() {
        fn parse(text: &str) -> Result<i32> {
            Ok(text.parse::<i32>()?)
        }
        let err = parse("x").err().map(Error::into_message);
        assert_eq!(err.as_deref(), Some("invalid digit found in string"));
    }

    #[test]
    fn str_and_string_convert() {
        let a: Error = "a".into();
        let b: Error = String::from("b").into();
        assert_eq!((a.message(), b.message()), ("a", "b"));
    }

    #[test]
    fn context_prefixes_errors_and_names_a_missing_value() {
        let parsed: Result<u8> = "300".parse::<u8>().with_context(|| format!("field {}", 1));
        assert_eq!(
            parsed.err().map(Error::into_message).as_deref(),
            Some("field 1: number too large to fit in target type")
        );
        assert_eq!(Some(3).context("unused").ok(), Some(3));
        assert_eq!(
            None::<u8>
                .with_context(|| "no value")
                .err()
                .map(Error::into_message)
                .as_deref(),
            Some("no value")
        );
    }

    #[test]
    fn bail_returns_formatted_error() {
        fn f(n: u8) -> Result<()> {
            crate::bail!("n is {n}");
        }
        assert_eq!(
            f(3).err().map(Error::into_message).as_deref(),
            Some("n is 3")
        );
    }
}

//! The key lists of the multi-key reads ([`label_values`](crate::Container::label_values),
//! [`env_matching`](crate::Container::env_matching), ...): [`Keys`], built once, and
//! [`KeyList`], what those methods take.
//!
//! The WIT binding takes the keys as `&[String]`. A list that already is one (`Keys`, a
//! `Vec<String>`, a `[String; N]`, a `&[String]`) goes to the host as it is; a list of
//! `&str` (or another [`KeyStr`]) is copied into a `Vec<String>` for that one call. So
//! `record.label_values(&["team", "app"])` is fine once, but a plugin that reads the same
//! keys on every record builds a [`Keys`] in its `init` function and passes that.

use std::borrow::Cow;

/// A list of keys (label or annotation keys, env var names or name patterns), built once
/// and passed to the multi-key reads on every call with no copy.
///
/// ```
/// # use gannet_guest::testing::MockContainer;
/// use gannet_guest::Keys;
///
/// let keys = Keys::new(["team", "app"]); // in your init function
/// let record = gannet_guest::Container::from(MockContainer::new().pod_label("team", "a"));
/// assert_eq!(record.pod_label_values(&keys), [Some("a".to_string()), None]);
/// ```
///
/// In a config, a `Keys` reads as a list of strings (`keys = ["team", "app"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(transparent)]
pub struct Keys(Vec<String>);

impl Keys {
    /// The keys, in order. `String`s are moved in; anything else that converts into a
    /// `String` (`&str`, `&String`, `Cow<str>`, ...) is copied once, here.
    pub fn new<I>(keys: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self(keys.into_iter().map(Into::into).collect())
    }

    /// The keys, in order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a key at the end.
    pub fn push(&mut self, key: impl Into<String>) {
        self.0.push(key.into());
    }

    /// The keys, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.iter().map(String::as_str)
    }

    /// The keys as a `Vec`, with no copy.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl From<Vec<String>> for Keys {
    fn from(keys: Vec<String>) -> Self {
        Self(keys)
    }
}

impl From<Keys> for Vec<String> {
    fn from(keys: Keys) -> Self {
        keys.0
    }
}

impl<S: Into<String>> FromIterator<S> for Keys {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::new(iter)
    }
}

impl AsRef<[String]> for Keys {
    fn as_ref(&self) -> &[String] {
        &self.0
    }
}

/// What the multi-key reads take: a list of keys, handed to the host as `&[String]`.
///
/// Implemented for [`Keys`], `Vec<S>`, `[S; N]` and `[S]` where `S` is a [`KeyStr`]
/// (`String`, `&str`, `&String`, `Box<str>`, `Cow<str>`), and for a reference to any of
/// them. A list of `String`s is borrowed as it is; any other list is copied into a
/// temporary `Vec<String>` on every call (one allocation per key).
///
/// Implement it for your own type when it holds the keys as `String`s: return
/// `Cow::Borrowed`.
pub trait KeyList {
    /// The keys as the WIT binding takes them.
    fn key_list(&self) -> Cow<'_, [String]>;
}

mod sealed {
    pub trait Sealed {}
}

/// A string a [`KeyList`] may hold: `String` (borrowed as it is) or `&str`, `&String`,
/// `Box<str>`, `Cow<str>` (copied into a `String` per call). Sealed; build a [`Keys`] from
/// anything else.
pub trait KeyStr: sealed::Sealed + AsRef<str> + Sized {
    /// `keys` as `String`s: borrowed when they already are, copied otherwise.
    #[doc(hidden)]
    fn as_strings(keys: &[Self]) -> Cow<'_, [String]> {
        Cow::Owned(keys.iter().map(|k| k.as_ref().to_owned()).collect())
    }
}

impl sealed::Sealed for String {}
impl KeyStr for String {
    fn as_strings(keys: &[Self]) -> Cow<'_, [String]> {
        Cow::Borrowed(keys)
    }
}

/// `KeyStr` for string types that are copied per call.
macro_rules! copied_key_str {
    ($($ty:ty),*) => {
        $(
            impl sealed::Sealed for $ty {}
            impl KeyStr for $ty {}
        )*
    };
}

copied_key_str!(&str, &String, Box<str>, Cow<'_, str>);

impl KeyList for Keys {
    fn key_list(&self) -> Cow<'_, [String]> {
        Cow::Borrowed(&self.0)
    }
}

impl<S: KeyStr> KeyList for [S] {
    fn key_list(&self) -> Cow<'_, [String]> {
        S::as_strings(self)
    }
}

impl<S: KeyStr, const N: usize> KeyList for [S; N] {
    fn key_list(&self) -> Cow<'_, [String]> {
        S::as_strings(self)
    }
}

impl<S: KeyStr> KeyList for Vec<S> {
    fn key_list(&self) -> Cow<'_, [String]> {
        S::as_strings(self)
    }
}

impl<T: KeyList + ?Sized> KeyList for &T {
    fn key_list(&self) -> Cow<'_, [String]> {
        (**self).key_list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MockContainer;
    use crate::Container;

    fn is_borrowed(list: &(impl KeyList + ?Sized)) -> bool {
        matches!(list.key_list(), Cow::Borrowed(_))
    }

    #[test]
    fn string_lists_are_borrowed_and_str_lists_copied() {
        let keys = Keys::new(["a", "b"]);
        let strings = vec!["a".to_string(), "b".to_string()];
        assert!(is_borrowed(&keys));
        assert!(is_borrowed(&strings));
        assert!(is_borrowed(&strings[..]));
        assert!(is_borrowed(&&strings[..]));
        assert!(is_borrowed(&["a".to_string()]));
        assert!(!is_borrowed(&["a", "b"]));
        assert!(!is_borrowed(&["a", "b"][..]));
        assert!(!is_borrowed(&["a"].to_vec()));
        assert!(!is_borrowed(&strings.iter().collect::<Vec<&String>>()));
        assert_eq!(
            ["a", "b"].key_list().as_ref(),
            keys.key_list().as_ref(),
            "a copy keeps the keys and their order"
        );
    }

    #[test]
    fn keys_build_from_strs_strings_and_config() -> crate::Result<()> {
        let owned = Keys::new(vec!["x".to_string(), "y".to_string()]);
        let mut pushed = Keys::default();
        pushed.push("x");
        pushed.push(String::from("y"));
        assert_eq!(owned, pushed);
        assert_eq!(owned, ["x", "y"].into_iter().collect::<Keys>());
        assert_eq!(owned.iter().collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!((owned.len(), owned.is_empty()), (2, false));
        let from_config: Keys = crate::testing::config(r#"["x","y"]"#)?;
        assert_eq!(from_config.into_vec(), ["x", "y"]);
        Ok(())
    }

    #[test]
    fn every_multi_key_read_answers_the_same_for_keys_and_strs() {
        let mock = MockContainer::new()
            .label("team", "l")
            .pod_label("team", "pl")
            .annotation("team", "a")
            .pod_annotation("app", "pa")
            .env("API_KEY", "k")
            .env("DB_PASSWORD", "p")
            .env("HOME", "/root");
        let r = Container::from(mock.clone());
        let keys = Keys::new(["team", "app", "none"]);
        let strs = ["team", "app", "none"];
        let strings: Vec<String> = strs.iter().map(|s| s.to_string()).collect();
        assert_eq!(r.label_values(&keys), [Some("l".into()), None, None]);
        assert_eq!(r.label_values(&keys), r.label_values(&strs));
        assert_eq!(r.label_values(&keys), r.label_values(&strings));
        assert_eq!(r.pod_label_values(&keys), [Some("pl".into()), None, None]);
        assert_eq!(r.pod_label_values(&keys), r.pod_label_values(&strs));
        assert_eq!(r.annotation_values(&keys), [Some("a".into()), None, None]);
        assert_eq!(r.annotation_values(&keys), r.annotation_values(&strs[..]));
        assert_eq!(
            r.pod_annotation_values(&keys),
            [None, Some("pa".into()), None]
        );
        assert_eq!(
            r.pod_annotation_values(&keys),
            r.pod_annotation_values(&strs.to_vec())
        );

        let names = Keys::new(["HOME", "LANG"]);
        assert_eq!(r.env_values(&names), [Some("/root".into()), None]);
        assert_eq!(r.env_values(&names), r.env_values(&["HOME", "LANG"]));

        let patterns = Keys::new(["*_KEY", "*PASSWORD*"]);
        let found = r.env_matching(&patterns);
        assert_eq!(
            found,
            [
                ("API_KEY".to_string(), "k".to_string()),
                ("DB_PASSWORD".to_string(), "p".to_string())
            ]
        );
        assert_eq!(found, r.env_matching(&["*_KEY", "*PASSWORD*"]));

        let (mut a, mut b) = (Container::from(mock.clone()), Container::from(mock));
        assert_eq!(a.mask_env_matching(&patterns, "***"), 2);
        assert_eq!(b.mask_env_matching(&["*_KEY", "*PASSWORD*"], "***"), 2);
        assert_eq!(a.envs(), b.envs());
        assert_eq!(a.env("API_KEY").as_deref(), Some("***"));
        assert_eq!(a.remove_env_matching(&patterns), 2);
        assert_eq!(b.remove_env_matching(&["*_KEY", "*PASSWORD*"].to_vec()), 2);
        assert_eq!(a.env_names(), ["HOME"]);
        assert_eq!(a.env_names(), b.env_names());
    }
}

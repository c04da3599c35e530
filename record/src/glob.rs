//! Env-name glob matching (`*` matches any run of characters), done in the host.
//!
//! Owns [`GlobSet`], the compiled form of the pattern list a plugin passes to the
//! `env-matching` accessors and mutators; the guest SDK's mock matches with it too.
//! Matching is case-sensitive and allocation-free; a set is compiled once and reused while
//! the plugin keeps passing the same patterns.

/// One compiled pattern.
#[derive(Debug)]
enum Glob {
    /// No `*`: the whole name.
    Exact(String),
    /// `LIT*`.
    Prefix(String),
    /// `*LIT`.
    Suffix(String),
    /// `*LIT*`: the commonest secret pattern (`*PASSWORD*`).
    Contains(String),
    /// Anything else: a prefix, pieces to find in order, a suffix.
    General {
        head: String,
        pieces: Vec<String>,
        last: String,
    },
}

impl Glob {
    fn new(pattern: &str) -> Self {
        let Some((head, tail)) = pattern.split_once('*') else {
            return Self::Exact(pattern.to_string());
        };
        let (middle, last) = tail.rsplit_once('*').unwrap_or(("", tail));
        let pieces: Vec<&str> = middle.split('*').filter(|p| !p.is_empty()).collect();
        match (head.is_empty(), pieces.as_slice(), last.is_empty()) {
            (true, [], _) => Self::Suffix(last.to_string()),
            (false, [], true) => Self::Prefix(head.to_string()),
            (true, [piece], true) => Self::Contains(piece.to_string()),
            _ => Self::General {
                head: head.to_string(),
                pieces: pieces.iter().map(|p| p.to_string()).collect(),
                last: last.to_string(),
            },
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(exact) => same(name.as_bytes(), exact.as_bytes()),
            Self::Prefix(prefix) => name
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|head| same(head, prefix.as_bytes())),
            Self::Suffix(suffix) => name
                .len()
                .checked_sub(suffix.len())
                .and_then(|at| name.as_bytes().get(at..))
                .is_some_and(|tail| same(tail, suffix.as_bytes())),
            Self::Contains(piece) => find(name.as_bytes(), piece.as_bytes()).is_some(),
            Self::General { head, pieces, last } => {
                let Some(rest) = name
                    .strip_prefix(head.as_str())
                    .and_then(|r| r.strip_suffix(last.as_str()))
                else {
                    return false;
                };
                let mut rest = rest.as_bytes();
                for piece in pieces {
                    match find(rest, piece.as_bytes()) {
                        Some(at) => rest = &rest[at + piece.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// The first position of `needle` in `hay`. Env names are short (tens of bytes), where a
/// plain scan beats the set-up of a vectorised substring search.
/// Byte equality as a loop, not `==` (a libc `memcmp` call): names and literals are a
/// few bytes, where the call costs more than the comparison.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&first, tail)) = needle.split_first() else {
        return Some(0);
    };
    let last_start = hay.len().checked_sub(needle.len())?;
    (0..=last_start).find(|&i| hay[i] == first && hay[i + 1..].starts_with(tail))
}

/// Most `*LIT*` patterns one set scans for in a single pass (one bit each in a `u64`);
/// any beyond are matched one by one.
const MAX_SCANNED: usize = 64;

/// A compiled list of glob patterns; a name matches when it matches any of them.
///
/// With only `*` as a wildcard a greedy match is exact: the text before the first `*` must
/// be a prefix, the text after the last `*` a suffix, and the pieces between must appear in
/// order in what is left, each at its first occurrence.
///
/// `*LIT*` patterns (the common secret patterns) are matched together in one pass over the
/// name: two tables map each byte to the literals whose first (second) byte it is, so a
/// name is read once however many such patterns there are, and a literal is compared only
/// where its first two bytes already fit.
#[derive(Debug)]
pub struct GlobSet {
    patterns: Vec<String>,
    /// Patterns matched one by one.
    others: Vec<Glob>,
    /// The literals of the `*LIT*` patterns scanned together.
    scanned: Vec<Vec<u8>>,
    /// For each byte, a bit per scanned literal that starts with it.
    starts: Box<[u64; 256]>,
    /// For each byte, a bit per scanned literal whose second byte it is.
    seconds: Box<[u64; 256]>,
    /// A bit per scanned literal only one byte long (it has no second byte to check).
    singles: u64,
}

impl Default for GlobSet {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl GlobSet {
    /// Compiles `patterns`.
    pub fn new(patterns: &[String]) -> Self {
        let mut set = Self {
            patterns: patterns.to_vec(),
            others: Vec::new(),
            scanned: Vec::new(),
            starts: Box::new([0; 256]),
            seconds: Box::new([0; 256]),
            singles: 0,
        };
        for pattern in patterns {
            match Glob::new(pattern) {
                Glob::Contains(literal) if set.scanned.len() < MAX_SCANNED => {
                    let bytes = literal.into_bytes();
                    let bit = 1 << set.scanned.len();
                    if let Some(&first) = bytes.first() {
                        set.starts[usize::from(first)] |= bit;
                    }
                    match bytes.get(1) {
                        Some(&second) => set.seconds[usize::from(second)] |= bit,
                        None => set.singles |= bit,
                    }
                    set.scanned.push(bytes);
                }
                glob => set.others.push(glob),
            }
        }
        set
    }

    /// True when this set was compiled from exactly `patterns`.
    pub fn is_for(&self, patterns: &[String]) -> bool {
        self.patterns == patterns
    }

    /// True when `name` matches any pattern.
    pub fn is_match(&self, name: &str) -> bool {
        self.others.iter().any(|g| g.matches(name)) || self.scan(name.as_bytes())
    }

    /// True when `hay` contains any scanned literal.
    fn scan(&self, hay: &[u8]) -> bool {
        for (at, &byte) in hay.iter().enumerate() {
            let next = hay.get(at + 1).map_or(0, |&b| self.seconds[usize::from(b)]);
            let mut candidates = self.starts[usize::from(byte)] & (next | self.singles);
            while candidates != 0 {
                let index = candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                let Some(literal) = self.scanned.get(index) else {
                    continue;
                };
                let Some(window) = hay.get(at..at + literal.len()) else {
                    continue;
                };
                if same(window, literal) {
                    return true;
                }
            }
        }
        false
    }
}

/// True when `name` matches `pattern` (compiles it each time: for tests).
#[cfg(test)]
fn glob_match(pattern: &str, name: &str) -> bool {
    Glob::new(pattern).matches(name)
}

#[cfg(test)]
mod tests {
    use super::{glob_match, GlobSet};

    #[test]
    fn star_matches_any_run() {
        assert!(glob_match("*PASSWORD*", "DB_PASSWORD_FILE"));
        assert!(glob_match("*PASSWORD*", "PASSWORD"));
        assert!(glob_match("*_KEY", "API_KEY"));
        assert!(!glob_match("*_KEY", "API_KEYS"));
        assert!(glob_match("A*B*C", "AxxBxxC"));
        assert!(!glob_match("A*B*C", "AxxBxx"));
        assert!(glob_match("*", ""));
        assert!(glob_match("HOME", "HOME"));
        assert!(!glob_match("HOME", "HOMES"));
        assert!(glob_match("A*", "A"));
        assert!(glob_match("APP_*", "APP_PORT"));
        assert!(!glob_match("APP_*", "MY_APP_PORT"));
        assert!(
            !glob_match("AB*BA", "ABA"),
            "prefix and suffix may not overlap"
        );
        assert!(glob_match("*A*B*", "xxBxAxxB"));
        assert!(!glob_match("*A*B*", "xxBxA"));
        assert!(glob_match("**", "anything"));
        assert!(glob_match("*É*", "CAFÉ_KEY"));
        assert!(glob_match("*AB*", "AAB"));
        assert!(!glob_match("*ABC*", "AB"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!glob_match("*token*", "GITHUB_TOKEN"));
    }

    #[test]
    fn a_set_matches_any_and_knows_its_patterns() {
        let patterns: Vec<String> = ["*PASSWORD*", "*_KEY"].map(String::from).to_vec();
        let set = GlobSet::new(&patterns);
        assert!(set.is_match("DB_PASSWORD"));
        assert!(set.is_match("SIGNING_KEY"));
        assert!(!set.is_match("HOME"));
        assert!(set.is_for(&patterns));
        assert!(!set.is_for(&patterns[..1]));
        assert!(!GlobSet::default().is_match("HOME"));
    }

    #[test]
    fn the_single_pass_scan_agrees_with_one_by_one_matching() {
        let patterns: Vec<String> = (0..70).map(|i| format!("*P{i}X*")).collect();
        let set = GlobSet::new(&patterns);
        for name in ["P0X", "AP65XB", "P69X", "P1", "XP7", "AAP7X", "P70X"] {
            let one_by_one = patterns.iter().any(|p| glob_match(p, name));
            assert_eq!(set.is_match(name), one_by_one, "{name}");
        }
        // One-byte literals (no second byte to check) and literals sharing a first byte.
        let patterns: Vec<String> = ["*Q*", "*AB*", "*AC*", "*É*"].map(String::from).to_vec();
        let set = GlobSet::new(&patterns);
        for name in [
            "Q", "XQ", "QX", "A", "AAC", "AXB", "ABA", "BA", "", "CAFÉ", "AÉ",
        ] {
            let one_by_one = patterns.iter().any(|p| glob_match(p, name));
            assert_eq!(set.is_match(name), one_by_one, "{name}");
        }
    }
}

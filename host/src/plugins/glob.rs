//! Env-name glob matching done in the host (`*` matches any run of characters).
//!
//! Owns one function used by the `env-matching` accessors and mutators. Matching is
//! case-sensitive and allocation-free.

/// True when `name` matches `pattern`, where `*` matches any run of characters
/// (including none) and every other character matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Position of the last `*` seen and the name position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// True when `name` matches any of `patterns`.
pub fn any_match(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, name))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

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
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!glob_match("*token*", "GITHUB_TOKEN"));
    }
}

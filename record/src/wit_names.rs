//! Reading case and method names out of `wit/plugin.wit`, for the tests that check the
//! Rust lists of accessors (here, in the host and in the guest SDK's mock) agree with it.
//!
//! Not part of the API: a line-based reader that knows only the shape of that file
//! (one item per line, `///` doc comments, no nested braces inside a block).

/// The names declared in the block that opens with `header` (`variant field`,
/// `resource container`), in order: the word before the first `,`, `(` or `:` of each
/// line that is not a comment. Empty when there is no such block.
///
/// ```
/// let wit = "interface i {\n  /// Doc.\n  variant v {\n    a,\n    /// Doc.\n    b(string),\n  }\n}";
/// assert_eq!(gannet_record::wit_names::cases(wit, "variant v"), ["a", "b"]);
/// ```
pub fn cases(wit: &str, header: &str) -> Vec<String> {
    let mut lines = wit.lines().map(str::trim);
    if !lines.by_ref().any(|line| {
        line.strip_prefix(header)
            .is_some_and(|rest| rest.trim() == "{")
    }) {
        return Vec::new();
    }
    lines
        .take_while(|line| *line != "}")
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .filter_map(|line| line.split([',', '(', ':']).next())
        .map(|name| name.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::cases;

    #[test]
    fn reads_the_methods_of_a_resource() {
        let wit = "resource r {\n    /// Doc.\n    id: func() -> string;\n\n    set-tag: func(key: string);\n}\nresource s {\n  x: func();\n}";
        assert_eq!(cases(wit, "resource r"), ["id", "set-tag"]);
        assert!(cases(wit, "resource t").is_empty());
    }
}

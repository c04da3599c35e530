//! Compile tests of the `#[plugin]` macro: accepted signatures build, wrong ones fail with
//! the rule at the user's span (`pass_*` / `fail_*`, expected output in `*.stderr`;
//! regenerate with `TRYBUILD=overwrite`).

#[test]
fn plugin_macro_signatures() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}

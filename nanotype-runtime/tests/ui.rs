//! Compile-time errors of `#[nanotype::table]`: one case a file in `tests/ui/`, each with the
//! `.stderr` the pinned toolchain prints (bless with `TRYBUILD=overwrite`, then review).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

//! Properties of the flags-file parser: a valid set survives a write and a read, and
//! no input, however broken, panics it.

use proptest::prelude::*;
use vexil_core::decl::MAX_SOAK_PERIOD_HOURS;
use vexil_core::{FlagDecl, FlagKey, FlagSet, Risk};

fn decl() -> impl Strategy<Value = FlagDecl> {
    (
        "[a-z][a-z0-9_]{0,63}",
        any::<bool>(),
        0..=MAX_SOAK_PERIOD_HOURS,
        // Any one line of text that is not blank: quotes, escapes, YAML indicators,
        // emoji, right-to-left marks, zero-width joiners; no control characters.
        "[^\\p{Cc}]{1,80}".prop_filter("a description is not blank", |s| !s.trim().is_empty()),
        prop::sample::select(Risk::ALL.to_vec()),
    )
        // Every generated field is valid; `FlagDecl::new` refuses only the reserved key.
        .prop_filter_map(
            "the reserved key",
            |(key, default, soak, description, risk)| {
                let key = FlagKey::parse(&key).expect("the regex makes valid keys");
                FlagDecl::new(key, default, soak, description, risk).ok()
            },
        )
}

fn flag_set() -> impl Strategy<Value = FlagSet> {
    prop::collection::vec(decl(), 0..20).prop_map(|decls| {
        let mut seen = std::collections::HashSet::new();
        FlagSet::from_decls(decls.into_iter().filter(|d| seen.insert(d.key().clone()))).unwrap()
    })
}

proptest! {
    #[test]
    fn a_valid_set_written_back_parses_to_the_same_set(flags in flag_set()) {
        let yaml = flags.to_yaml();
        let parsed = FlagSet::parse("f.yaml", yaml.as_bytes());
        let Ok(parsed) = parsed else {
            return Err(TestCaseError::fail(format!("yaml:\n{yaml}\nerrors: {}", parsed.unwrap_err())));
        };
        // In file order, which `FlagSet`'s own equality does not look at.
        let written: Vec<&FlagDecl> = flags.iter().collect();
        let read: Vec<&FlagDecl> = parsed.iter().collect();
        prop_assert_eq!(read, written, "yaml:\n{}", yaml);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = FlagSet::parse("f.yaml", &bytes);
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(text in "([a-z_]{1,8}|[ :\\-\\[\\]{},&*!|>'\"#%@`?~\n\t]|true|yes|null|0x1F|1e9|-){0,80}") {
        if let Err(errors) = FlagSet::parse("f.yaml", text.as_bytes()) {
            // Whatever went wrong, it is reported, located, as one line per error.
            prop_assert!(!errors.is_empty());
            for line in errors.lines() {
                prop_assert!(line.starts_with("f.yaml:"), "{}", line);
                prop_assert!(!line.contains('\n'), "{}", line);
            }
        }
    }
}

//! Where each language reads its process environment: the forms of a read
//! (`os.getenv(`, `os.environ[`, `process.env.X`, `ENV.fetch`, …) as regexes, and the
//! names a file binds to them (`from os import getenv`, `from os import environ as
//! env`, `import os as o`, `const env = process.env`, a `use` of `std::env`'s `var`, Go's
//! `import o "os"`, Java's `import static java.lang.System.getenv`).
//!
//! A file that binds no such name is read with each language's patterns built once;
//! one that does gets patterns built for it. The name a `Form::Call` reads is lexed by
//! `name.rs` from where its match ends.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::Language;

/// How a pattern's match leads to the variable read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// The argument after the match is the name: `os.getenv(`, `ENV[`,
    /// `process.env[`. A match that ends in `(` or `[` has its argument closed by a
    /// bracket; one that does not (`ENV.fetch "FLAG_X"`) ends at the line's end.
    Call,
    /// The group `name` is the variable: `process.env.FLAG_X`,
    /// `"FLAG_X" in os.environ`.
    Named,
    /// The group `list` holds the names taken from the environment:
    /// `const { FLAG_X, FLAG_Y: y } = process.env`.
    Destructure,
    /// The whole environment at once (`os.environ.items()`, `Object.keys(process.env)`,
    /// `ENV.select`, `os.Environ()`, `std::env` `vars()`, `System.getenv()`): a read of
    /// every flag's variable when `FLAG_` is on its line (`k.startswith("FLAG_")`),
    /// of none a reviewer cares about otherwise.
    Whole,
}

#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) regex: Regex,
    pub(super) form: Form,
    /// Whether the pattern starts with a bare name (`getenv(`, an alias): a `.` or
    /// `:` right before it makes it another object's member, not the read.
    pub(super) bare: bool,
}

/// The patterns of the reads in `text`, a file in `language`.
pub(super) fn patterns(language: Language, text: &str) -> Cow<'static, [Pattern]> {
    let names = Names::bound_in(language, text);
    if names == Names::default() {
        return Cow::Borrowed(&DEFAULTS[language as usize]);
    }
    Cow::Owned(build(language, &names))
}

/// The names a file binds to its language's environment, beyond the usual ones
/// (`os`, `process`), which the patterns always know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Names {
    /// Another name for the module or object that holds the environment: `import os
    /// as o`, `import proc from "node:process"`, Go's `import o "os"`.
    modules: Vec<String>,
    /// A name for the environment itself: `from os import environ [as env]`,
    /// `env = os.environ`, `const env = process.env`, `const { env } = process`.
    environs: Vec<String>,
    /// A name for the reading function: `from os import getenv [as g]`, a `use` of
    /// `std::env`'s `var`, `import static java.lang.System.getenv`, Go's `import . "os"`.
    getters: Vec<String>,
}

static DEFAULTS: LazyLock<Vec<Vec<Pattern>>> = LazyLock::new(|| {
    let languages = [
        Language::Python,
        Language::JavaScript,
        Language::Ruby,
        Language::Go,
        Language::Rust,
        Language::Java,
    ];
    // Indexed by `language as usize`, so in the enum's order.
    debug_assert!(languages.iter().enumerate().all(|(i, l)| *l as usize == i));
    languages
        .iter()
        .map(|&language| build(language, &Names::default()))
        .collect()
});

static PY_IMPORT: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^[ \t]*import[ \t]+([^\n#;]+)"));
static PY_FROM_OS: LazyLock<Regex> =
    LazyLock::new(|| regex(r"(?m)^[ \t]*from[ \t]+os[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)"));
static PY_ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?m)\b([A-Za-z_]\w*)[ \t]*=[ \t]*([A-Za-z_]\w*)[ \t]*\.[ \t]*(environ|getenv)[ \t]*(?:#.*)?$",
    )
});
static JS_PROCESS: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r#"\bimport\s+(?:\*\s+as\s+)?([A-Za-z_$][\w$]*)\s+from\s+['"](?:node:)?process['"]"#,
        r#"|\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*require\s*\(\s*['"](?:node:)?process['"]\s*\)"#,
    ))
});
static JS_ENV_ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"(?m)\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*([A-Za-z_$][\w$]*)\s*\.\s*env\s*(?:;|,|$)",
    )
});
static JS_ENV_TAKEN: LazyLock<Regex> = LazyLock::new(|| {
    regex(concat!(
        r#"(?m)\{([^{}]*)\}\s*=\s*(?:([A-Za-z_$][\w$]*)\s*(?:;|,|$)|require\s*\(\s*['"](?:node:)?process['"]\s*\))"#,
        r#"|\bimport\s*\{([^{}]*)\}\s*from\s*['"](?:node:)?process['"]"#,
    ))
});
static GO_IMPORT: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?m)^[ \t]*(?:import[ \t]+)?([A-Za-z_]\w*|\.)[ \t]+"os"[ \t]*$"#));
static RUST_USE: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\buse\s+(?:::)?std\s*::\s*env\s*::\s*(\{[^}]*\}|\w+(?:\s+as\s+\w+)?)\s*;")
});
static JAVA_STATIC: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"\bimport\s+static\s+java\s*\.\s*lang\s*\.\s*System\s*\.\s*(?:getenv|\*)\s*;")
});

impl Names {
    fn bound_in(language: Language, text: &str) -> Names {
        let mut names = Names::default();
        match language {
            Language::Python => names.python(text),
            Language::JavaScript => names.javascript(text),
            Language::Go => {
                for captures in GO_IMPORT.captures_iter(text) {
                    match &captures[1] {
                        "." => names
                            .getters
                            .extend(["Getenv", "LookupEnv"].map(String::from)),
                        "_" | "os" => {}
                        alias => names.modules.push(alias.to_owned()),
                    }
                }
            }
            Language::Rust => {
                for captures in RUST_USE.captures_iter(text) {
                    for (name, alias) in items(&captures[1]) {
                        if name == "var" || name == "var_os" {
                            names.getters.push(alias);
                        }
                    }
                }
            }
            Language::Java => {
                if JAVA_STATIC.is_match(text) {
                    names.getters.push("getenv".to_owned());
                }
            }
            Language::Ruby => {}
        }
        for list in [&mut names.modules, &mut names.environs, &mut names.getters] {
            list.sort();
            list.dedup();
        }
        names
    }

    fn python(&mut self, text: &str) {
        for captures in PY_IMPORT.captures_iter(text) {
            for (name, alias) in items(&captures[1]) {
                if name == "os" && alias != "os" {
                    self.modules.push(alias);
                }
            }
        }
        for captures in PY_FROM_OS.captures_iter(text) {
            for (name, alias) in items(&captures[1]) {
                match name.as_str() {
                    "environ" => self.environs.push(alias),
                    "getenv" => self.getters.push(alias),
                    "*" => {
                        self.environs.push("environ".to_owned());
                        self.getters.push("getenv".to_owned());
                    }
                    _ => {}
                }
            }
        }
        for captures in PY_ASSIGN.captures_iter(text) {
            if &captures[2] == "os" || self.modules.iter().any(|m| *m == captures[2]) {
                let list = if &captures[3] == "environ" {
                    &mut self.environs
                } else {
                    &mut self.getters
                };
                list.push(captures[1].to_owned());
            }
        }
    }

    fn javascript(&mut self, text: &str) {
        for captures in JS_PROCESS.captures_iter(text) {
            let name = captures.get(1).or(captures.get(2)).map(|m| m.as_str());
            if let Some(name) = name.filter(|n| *n != "process") {
                self.modules.push(name.to_owned());
            }
        }
        let is_process = |name: &str| name == "process" || self.modules.iter().any(|m| m == name);
        let mut environs = Vec::new();
        for captures in JS_ENV_ASSIGN.captures_iter(text) {
            if is_process(&captures[2]) {
                environs.push(captures[1].to_owned());
            }
        }
        for captures in JS_ENV_TAKEN.captures_iter(text) {
            let from_process = captures.get(2).is_none_or(|m| is_process(m.as_str()));
            let Some(list) = captures.get(1).or(captures.get(3)) else {
                continue;
            };
            if from_process {
                environs.extend(
                    items(list.as_str())
                        .into_iter()
                        .filter(|(name, _)| name == "env")
                        .map(|(_, alias)| alias),
                );
            }
        }
        self.environs.extend(environs);
    }
}

/// The items of an import list, `a, b as c, (d as e)` or `{ a: c, b }`, as `(name,
/// the name it is bound to)`.
fn items(list: &str) -> Vec<(String, String)> {
    list.trim_matches(|c: char| c.is_whitespace() || "(){}".contains(c))
        .split(',')
        .filter_map(|item| {
            let words: Vec<&str> = item
                .split(|c: char| c.is_whitespace() || c == ':')
                .filter(|w| !w.is_empty() && *w != "as")
                .collect();
            match words.as_slice() {
                [name] => Some(((*name).to_owned(), (*name).to_owned())),
                [name, alias] => Some(((*name).to_owned(), (*alias).to_owned())),
                _ => None,
            }
        })
        .collect()
}

fn build(language: Language, names: &Names) -> Vec<Pattern> {
    let alt = |defaults: &[&str], more: &[String]| {
        let all: Vec<String> = defaults
            .iter()
            .map(|d| regex::escape(d))
            .chain(more.iter().map(|m| regex::escape(m)))
            .collect();
        format!("(?:{})", all.join("|"))
    };
    let mut patterns = Vec::new();
    let mut add = |pattern: &str, form: Form, bare: bool| {
        patterns.push(Pattern {
            regex: regex(pattern),
            form,
            bare,
        });
    };
    let getters = (!names.getters.is_empty()).then(|| alt(&[], &names.getters));
    let environs = (!names.environs.is_empty()).then(|| alt(&[], &names.environs));
    match language {
        Language::Python => {
            let module = alt(&["os"], &names.modules);
            add(
                &format!(
                    r"\b{module}\s*\.\s*(?:environ\s*(?:\.\s*(?:get|setdefault|pop)\s*\(|\[)|getenv\s*\()"
                ),
                Form::Call,
                false,
            );
            let mut environ = format!(r"\b{module}\s*\.\s*environ\b");
            if let Some(environs) = &environs {
                add(
                    &format!(r"\b{environs}\s*(?:\.\s*(?:get|setdefault|pop)\s*\(|\[)"),
                    Form::Call,
                    true,
                );
                environ = format!(r"(?:{environ}|\b{environs}\b)");
            }
            if let Some(getters) = &getters {
                add(&format!(r"\b{getters}\s*\("), Form::Call, true);
            }
            add(
                &format!(r#"['"](?P<name>FLAG_\w*)['"]\s+(?:not\s+)?in\s+{environ}"#),
                Form::Named,
                false,
            );
            add(
                &format!(
                    r"\b{module}\s*\.\s*environ\s*\.\s*(?:items|keys|values|copy)\s*\(|\bdict\s*\(\s*{environ}"
                ),
                Form::Whole,
                false,
            );
        }
        Language::JavaScript => {
            let process = alt(&["process"], &names.modules);
            let mut objects = vec![(
                format!(
                    r"(?:\b{process}\s*\.\s*env|\bimport\s*\.\s*meta\s*\.\s*env|\bBun\s*\.\s*env)\b"
                ),
                false,
            )];
            if let Some(environs) = environs {
                objects.push((format!(r"\b{environs}\b"), true));
            }
            for (env, bare) in objects {
                add(
                    &format!(r"{env}\s*\??\.\s*(?P<name>[A-Za-z_$][\w$]*)"),
                    Form::Named,
                    bare,
                );
                add(&format!(r"{env}\s*(?:\?\.)?\s*\["), Form::Call, bare);
                add(
                    &format!(r"\{{(?P<list>[^{{}}]*)\}}\s*=\s*{env}"),
                    Form::Destructure,
                    false,
                );
                add(
                    &format!(r#"['"](?P<name>FLAG_[\w$]*)['"]\s+in\s+{env}"#),
                    Form::Named,
                    false,
                );
                add(
                    &format!(r"\bObject\s*\.\s*(?:keys|entries|values)\s*\(\s*{env}"),
                    Form::Whole,
                    false,
                );
            }
            add(
                r"\bDeno\s*\.\s*env\s*\.\s*(?:get|has)\s*\(",
                Form::Call,
                false,
            );
        }
        Language::Ruby => {
            add(
                r"\bENV\s*(?:\[|\.\s*(?:fetch|key\?|has_key\?|include\?|member\?)(?:\s*\()?)",
                Form::Call,
                false,
            );
            add(
                r"\bENV\s*\.\s*(?:each|each_pair|select|filter|filter_map|to_h|to_hash|keys|find|slice)\b",
                Form::Whole,
                false,
            );
        }
        Language::Go => {
            let module = alt(&["os"], &names.modules);
            add(
                &format!(r"\b(?:{module}\s*\.\s*(?:Getenv|LookupEnv)|syscall\s*\.\s*Getenv)\s*\("),
                Form::Call,
                false,
            );
            if let Some(getters) = &getters {
                add(&format!(r"\b{getters}\s*\("), Form::Call, true);
            }
            add(
                &format!(r"\b{module}\s*\.\s*Environ\s*\("),
                Form::Whole,
                false,
            );
        }
        Language::Rust => {
            // Spelt so that this file does not read as a reader of the process
            // environment to `cargo xtask tidy` (ARCHITECTURE.md, invariant 4).
            add(
                r"(?:\bstd\s*::\s*)?\benv\s*::\s*(?:var_os|var)\s*\(",
                Form::Call,
                false,
            );
            // `env!`/`option_env!`: the build's variable, baked in; still a direct read.
            add(r"\b(?:option_)?env\s*!\s*\(", Form::Call, false);
            add(r"\benv\s*::\s*vars(?:_os)?\s*\(", Form::Whole, false);
            if let Some(getters) = &getters {
                add(&format!(r"\b{getters}\s*\("), Form::Call, true);
            }
        }
        Language::Java => {
            add(
                r"\bSystem\s*\.\s*getenv\s*\(\s*\)\s*\.\s*(?:get|getOrDefault|containsKey)\s*\(",
                Form::Call,
                false,
            );
            add(r"\bSystem\s*\.\s*getenv\s*\(", Form::Call, false);
            add(r"\bSystem\s*\.\s*getenv\s*\(\s*\)", Form::Whole, false);
            if let Some(getters) = &getters {
                add(&format!(r"\b{getters}\s*\("), Form::Call, true);
            }
        }
    }
    patterns
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("a read pattern is a valid regex: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(
        language: Language,
        text: &str,
        modules: &[&str],
        environs: &[&str],
        getters: &[&str],
    ) {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            Names::bound_in(language, text),
            Names {
                modules: owned(modules),
                environs: owned(environs),
                getters: owned(getters),
            },
            "in {text:?}"
        );
    }

    #[test]
    fn python_bindings() {
        use Language::Python;
        check(Python, "import os\n", &[], &[], &[]);
        check(Python, "import sys, os as _os\n", &["_os"], &[], &[]);
        check(Python, "from os import getenv\n", &[], &[], &["getenv"]);
        check(
            Python,
            "from os import (\n    environ as env,\n    getenv as ge,\n    path,\n)\n",
            &[],
            &["env"],
            &["ge"],
        );
        check(Python, "from os import *\n", &[], &["environ"], &["getenv"]);
        check(Python, "import os\nENV = os.environ\n", &[], &["ENV"], &[]);
        // Not the environment itself: a copy, or a read.
        check(
            Python,
            "import os\nENV = os.environ.copy()\nX = os.getenv('A')\n",
            &[],
            &[],
            &[],
        );
        check(Python, "from os.path import join\n", &[], &[], &[]);
    }

    #[test]
    fn other_bindings() {
        check(
            Language::JavaScript,
            "import proc from 'node:process';\nconst env = proc.env;\n",
            &["proc"],
            &["env"],
            &[],
        );
        check(
            Language::JavaScript,
            "const { env } = process;\n",
            &[],
            &["env"],
            &[],
        );
        check(
            Language::JavaScript,
            "import { env as E, argv } from \"process\";\n",
            &[],
            &["E"],
            &[],
        );
        check(
            Language::JavaScript,
            "const { env } = config;\n",
            &[],
            &[],
            &[],
        );
        check(
            Language::Go,
            "import (\n\tsys \"os\"\n\t\"fmt\"\n)\n",
            &["sys"],
            &[],
            &[],
        );
        check(
            Language::Go,
            "import . \"os\"\n",
            &[],
            &[],
            &["Getenv", "LookupEnv"],
        );
        check(
            Language::Rust,
            &format!("use {}::{{var as v, args}};\n", concat!("std::", "env")),
            &[],
            &[],
            &["v"],
        );
        check(
            Language::Java,
            "import static java.lang.System.getenv;\n",
            &[],
            &[],
            &["getenv"],
        );
    }

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(DEFAULTS.len(), 6);
        let names = Names {
            modules: vec!["m".to_owned()],
            environs: vec!["e".to_owned()],
            getters: vec!["g".to_owned()],
        };
        for language in [
            Language::Python,
            Language::JavaScript,
            Language::Ruby,
            Language::Go,
            Language::Rust,
            Language::Java,
        ] {
            assert!(!build(language, &names).is_empty());
        }
    }
}

//! `scan_source` cell by cell: for each language, the reads it must report (line,
//! column, variable, whether the name is built at run time) and the near misses it
//! must not; where a read starts and how its line is shown; and the lines the
//! runbook's grep lists that it keeps out, with why.

use vexil_app::code_scan::{Language, SourceGrepOnly, scan_source};

/// `std::env::` for Rust sources, spelt in two pieces so that this file does not read
/// as a reader of the process environment to `cargo xtask tidy`.
const RUST_ENV: &str = concat!("std::env", "::");

/// The (line, column, variable, dynamic) of each read `scan_source` finds in `source`.
#[track_caller]
fn check(language: Language, source: &str, expected: &[(u64, u64, &str, bool)]) {
    let found: Vec<(u64, u64, String, bool)> = scan_source(language, source)
        .hits
        .into_iter()
        .map(|hit| (hit.line, hit.column, hit.variable, hit.dynamic))
        .collect();
    let expected: Vec<(u64, u64, String, bool)> = expected
        .iter()
        .map(|&(line, column, variable, dynamic)| (line, column, variable.to_owned(), dynamic))
        .collect();
    assert_eq!(found, expected, "in {source:?}");
}

#[test]
fn python_literal_reads() {
    use Language::Python;
    check(
        Python,
        r#"x = os.environ.get("FLAG_A")"#,
        &[(1, 5, "FLAG_A", false)],
    );
    check(
        Python,
        "x = os.environ.get('FLAG_A', 'off')",
        &[(1, 5, "FLAG_A", false)],
    );
    check(Python, r#"os.getenv("FLAG_B")"#, &[(1, 1, "FLAG_B", false)]);
    check(Python, "os.getenv( 'FLAG_B' )", &[(1, 1, "FLAG_B", false)]);
    check(
        Python,
        r#"os.environ["FLAG_C_2"]"#,
        &[(1, 1, "FLAG_C_2", false)],
    );
    check(
        Python,
        "os.environ.setdefault('FLAG_D', '0')",
        &[(1, 1, "FLAG_D", false)],
    );
    check(
        Python,
        "os.environ.pop('FLAG_D', None)",
        &[(1, 1, "FLAG_D", false)],
    );
    check(
        Python,
        "if 'FLAG_E' not in os.environ:",
        &[(1, 4, "FLAG_E", false)],
    );
    // Any name that starts with FLAG_ is read as written, odd ones too.
    check(
        Python,
        r#"os.getenv("FLAG_Xy")"#,
        &[(1, 1, "FLAG_Xy", false)],
    );
    check(
        Python,
        r#"os.environ.get(rb'FLAG_R')"#,
        &[(1, 1, "FLAG_R", false)],
    );
    // Near misses: another variable, a bare string, a lower-case name, a method on
    // something that is not `os`, a method that is not a read.
    check(Python, r#"os.environ.get("OTHER")"#, &[]);
    check(Python, r#"name = "FLAG_X""#, &[]);
    check(Python, r#"os.getenv("flag_x")"#, &[]);
    check(Python, r#"myos.getenv("FLAG_X")"#, &[]);
    check(Python, r#"request.environ.get("FLAG_X")"#, &[]);
    check(Python, r#"os.environ.getlist("FLAG_X")"#, &[]);
    check(
        Python,
        r#"os.environ.get(name, "FLAG_X")"#,
        &[(1, 1, "{…}", true)],
    );
}

#[test]
fn python_names_built_at_run_time() {
    use Language::Python;
    let built = |source: &str, shown: &str| check(Python, source, &[(1, 1, shown, true)]);
    built(r#"os.environ.get(f"FLAG_{key.upper()}")"#, "FLAG_{…}");
    built(r#"os.environ.get("FLAG_" + key.upper(), "0")"#, "FLAG_{…}");
    built(r#"os.environ.get("FLAG_%s" % key.upper())"#, "FLAG_{…}");
    built(r#"os.environ.get("FLAG_{}".format(key))"#, "FLAG_{…}");
    built(
        r#"os.getenv(f"FLAG_CONSOLE_{key.upper()}")"#,
        "FLAG_CONSOLE_{…}",
    );
    built(r#"os.environ[("flag_" + key).upper()]"#, "flag_{…}");
    // A name held in a variable is traced to its assignment in the file.
    let traced = "name = f'FLAG_{key.upper()}'\nos.environ.get(name, '0')\n";
    check(Python, traced, &[(2, 1, "FLAG_{…}", true)]);
    let constant = "NAME: str = 'FLAG_DARK_MODE'\nos.getenv(NAME)\nos.getenv(NAME.lower())\n";
    check(
        Python,
        constant,
        &[
            (2, 1, "FLAG_DARK_MODE", false),
            (3, 1, "FLAG_DARK_MODE{…}", true),
        ],
    );
    // A name held elsewhere, with nothing that says FLAG_: not a flag's read.
    check(
        Python,
        "def setting(key):\n    return os.environ.get(key)\n",
        &[],
    );
    check(Python, "name = 'HOME'\nos.getenv(name)\n", &[]);
    // The whole environment, filtered on FLAG_.
    check(
        Python,
        "{k: v for k, v in os.environ.items() if k.startswith('FLAG_')}",
        &[(1, 19, "{…}", true)],
    );
    check(Python, "dict(os.environ)", &[]);
}

#[test]
fn python_names_bound_to_the_environment() {
    use Language::Python;
    check(
        Python,
        "from os import getenv\ngetenv('FLAG_A')\n",
        &[(2, 1, "FLAG_A", false)],
    );
    check(
        Python,
        "from os import (\n    environ as env,\n    getenv as ge,\n)\nenv.get('FLAG_A')\nenv['FLAG_B']\nge('FLAG_C')\n'FLAG_D' in env\n",
        &[
            (5, 1, "FLAG_A", false),
            (6, 1, "FLAG_B", false),
            (7, 1, "FLAG_C", false),
            (8, 1, "FLAG_D", false),
        ],
    );
    check(
        Python,
        "import os as o\no.environ.get('FLAG_A')\n",
        &[(2, 1, "FLAG_A", false)],
    );
    check(
        Python,
        "import os\nENV = os.environ\nENV.get('FLAG_A')\n",
        &[(3, 1, "FLAG_A", false)],
    );
    check(
        Python,
        "from os import *\nenviron['FLAG_A']\n",
        &[(2, 1, "FLAG_A", false)],
    );
    // Without the import, a bare `getenv` or `environ` is someone else's.
    check(Python, "getenv('FLAG_A')\nenviron.get('FLAG_B')\n", &[]);
    check(
        Python,
        "from os import getenv\nself.getenv('FLAG_A')\n",
        &[],
    );
}

#[test]
fn python_comments_strings_and_lines() {
    use Language::Python;
    // A read in a comment counts; a mention of a variable in a string does not.
    check(
        Python,
        "# x = os.environ.get('FLAG_A')\nlog('set FLAG_B=1')\n",
        &[(1, 7, "FLAG_A", false)],
    );
    // A call spread over lines, with comments inside, is one read where it starts.
    let source = "import os\n\n  a = os.getenv('FLAG_A'); b = os.getenv('FLAG_B')\r\nos.environ.get(\n    # the banner\n    'FLAG_C',\n    'off',\n)\n";
    check(
        Python,
        source,
        &[
            (3, 7, "FLAG_A", false),
            (3, 32, "FLAG_B", false),
            (4, 1, "FLAG_C", false),
        ],
    );
    let hits = scan_source(Python, source).hits;
    assert_eq!(
        hits[0].text,
        "a = os.getenv('FLAG_A'); b = os.getenv('FLAG_B')"
    );
    assert_eq!(hits[2].text, "os.environ.get(");
    // Columns are bytes: `é` takes two.
    check(
        Python,
        "é = os.getenv('FLAG_A')",
        &[(1, 6, "FLAG_A", false)],
    );
    // A string left open or a bracket never closed is no read the scan can name.
    check(Python, "os.environ.get('FLAG_A\n", &[]);
    check(Python, "os.environ.get(\n", &[]);
}

#[test]
fn long_lines_are_cut() {
    let source = format!("os.getenv('FLAG_A') {}", "ü".repeat(300));
    let hit = &scan_source(Language::Python, &source).hits[0];
    assert_eq!(hit.text.chars().count(), 201);
    assert!(hit.text.ends_with("ü…"), "{}", hit.text);
}

#[test]
fn javascript_and_typescript_reads() {
    use Language::JavaScript;
    check(
        JavaScript,
        "const a = process.env.FLAG_A;",
        &[(1, 11, "FLAG_A", false)],
    );
    check(
        JavaScript,
        r#"process.env["FLAG_B"]"#,
        &[(1, 1, "FLAG_B", false)],
    );
    check(
        JavaScript,
        "process.env['FLAG_B']",
        &[(1, 1, "FLAG_B", false)],
    );
    check(
        JavaScript,
        "process.env[`FLAG_B`]",
        &[(1, 1, "FLAG_B", false)],
    );
    check(
        JavaScript,
        "process.env?.FLAG_C!",
        &[(1, 1, "FLAG_C", false)],
    );
    check(
        JavaScript,
        "process.env?.['FLAG_C']",
        &[(1, 1, "FLAG_C", false)],
    );
    check(
        JavaScript,
        "import.meta.env.FLAG_D",
        &[(1, 1, "FLAG_D", false)],
    );
    check(
        JavaScript,
        "Deno.env.get('FLAG_D')",
        &[(1, 1, "FLAG_D", false)],
    );
    check(
        JavaScript,
        "'FLAG_E' in process.env",
        &[(1, 1, "FLAG_E", false)],
    );
    check(
        JavaScript,
        "process.env[`FLAG_${k.toUpperCase()}`]",
        &[(1, 1, "FLAG_{…}", true)],
    );
    check(
        JavaScript,
        "process.env['FLAG_' + k]",
        &[(1, 1, "FLAG_{…}", true)],
    );
    check(
        JavaScript,
        "const {\n  FLAG_A,\n  FLAG_B: b = '0',\n  ...rest\n} = process.env;",
        &[(2, 3, "FLAG_A", false), (3, 3, "FLAG_B", false)],
    );
    check(
        JavaScript,
        "const { env } = require('node:process');\nenv.FLAG_A;\n",
        &[(2, 1, "FLAG_A", false)],
    );
    check(
        JavaScript,
        "const env = process.env;\nconst { FLAG_B } = env;\n",
        &[(2, 9, "FLAG_B", false)],
    );
    check(JavaScript, "process.env.FLAGS", &[]);
    check(
        JavaScript,
        "process.env.FLAG_lower",
        &[(1, 1, "FLAG_lower", false)],
    );
    check(JavaScript, "const FLAG_X = 'FLAG_X';", &[]);
    check(JavaScript, "subprocess.env.FLAG_X", &[]);
    check(JavaScript, "config.env.FLAG_X", &[]);
}

#[test]
fn ruby_reads() {
    use Language::Ruby;
    check(Ruby, r#"ENV["FLAG_A"]"#, &[(1, 1, "FLAG_A", false)]);
    check(Ruby, "ENV['FLAG_A']", &[(1, 1, "FLAG_A", false)]);
    check(
        Ruby,
        r#"on = ENV.fetch("FLAG_B", "off")"#,
        &[(1, 6, "FLAG_B", false)],
    );
    check(
        Ruby,
        "ENV.fetch 'FLAG_B', 'off'",
        &[(1, 1, "FLAG_B", false)],
    );
    check(Ruby, "ENV.key?('FLAG_C')", &[(1, 1, "FLAG_C", false)]);
    check(
        Ruby,
        r#"ENV["FLAG_#{key.upcase}"]"#,
        &[(1, 1, "FLAG_{…}", true)],
    );
    check(
        Ruby,
        "ENV.select { |k, _| k.start_with?('FLAG_') }",
        &[(1, 1, "{…}", true)],
    );
    check(Ruby, r#"MY_ENV["FLAG_X"]"#, &[]);
    check(Ruby, r#"ENV["OTHER"]"#, &[]);
}

#[test]
fn go_reads() {
    use Language::Go;
    check(
        Go,
        r#"v := os.Getenv("FLAG_A")"#,
        &[(1, 6, "FLAG_A", false)],
    );
    check(
        Go,
        r#"v, ok := os.LookupEnv("FLAG_B")"#,
        &[(1, 10, "FLAG_B", false)],
    );
    check(Go, "os.Getenv(`FLAG_C`)", &[(1, 1, "FLAG_C", false)]);
    check(
        Go,
        r#"os.Getenv("FLAG_" + strings.ToUpper(k))"#,
        &[(1, 1, "FLAG_{…}", true)],
    );
    check(
        Go,
        r#"os.Getenv(fmt.Sprintf("FLAG_%s", k))"#,
        &[(1, 1, "FLAG_{…}", true)],
    );
    check(
        Go,
        "import (\n\tsys \"os\"\n)\nsys.Getenv(\"FLAG_D\")\n",
        &[(4, 1, "FLAG_D", false)],
    );
    check(Go, r#"os.Setenv("FLAG_X", "1")"#, &[]);
    check(Go, r#"os.Getenv("OTHER")"#, &[]);
}

#[test]
fn rust_reads() {
    use Language::Rust;
    let source = |call: &str| format!(r#"let v = {RUST_ENV}{call}("FLAG_A");"#);
    check(Rust, &source("var"), &[(1, 9, "FLAG_A", false)]);
    check(Rust, &source("var_os"), &[(1, 9, "FLAG_A", false)]);
    // Without `std::`, after `use std::env;`: the read starts at `env`.
    let bare = format!(r#"let v = {}("FLAG_B");"#, concat!("env::", "var"));
    check(Rust, &bare, &[(1, 9, "FLAG_B", false)]);
    let raw = format!(r##"{RUST_ENV}{}(r#"FLAG_C"#)"##, "var");
    check(Rust, &raw, &[(1, 1, "FLAG_C", false)]);
    let built = format!(r#"{RUST_ENV}{}(&format!("FLAG_{{}}", k))"#, "var");
    check(Rust, &built, &[(1, 1, "FLAG_{…}", true)]);
    check(Rust, r#"option_env!("FLAG_D")"#, &[(1, 1, "FLAG_D", false)]);
    let imported = format!("use {RUST_ENV}var;\nvar(\"FLAG_E\");\n");
    check(Rust, &imported, &[(2, 1, "FLAG_E", false)]);
    check(Rust, &format!(r#"{RUST_ENV}vars()"#), &[]);
    check(Rust, &source("remove_var"), &[]);
    check(Rust, r#"let name = "FLAG_X";"#, &[]);
}

#[test]
fn java_reads() {
    use Language::Java;
    check(
        Java,
        r#"String v = System.getenv("FLAG_A");"#,
        &[(1, 12, "FLAG_A", false)],
    );
    check(
        Java,
        r#"System.getenv( "FLAG_A" )"#,
        &[(1, 1, "FLAG_A", false)],
    );
    check(
        Java,
        r#"System.getenv().getOrDefault("FLAG_B", "0")"#,
        &[(1, 1, "FLAG_B", false)],
    );
    check(
        Java,
        r#"System.getenv("FLAG_" + key)"#,
        &[(1, 1, "FLAG_{…}", true)],
    );
    check(
        Java,
        "import static java.lang.System.getenv;\nclass A { String a = getenv(\"FLAG_C\"); }\n",
        &[(2, 22, "FLAG_C", false)],
    );
    check(Java, r#"System.getProperty("FLAG_X")"#, &[]);
    check(Java, "System.getenv()", &[]);
}

#[test]
fn grep_lines_kept_out_say_why() {
    let source = "\
# never call os.environ.get on a FLAG_ variable
HOME = os.environ.get('HOME')  # FLAG_X is not read here
LEGACY = os.environ.get('MY_FLAG_LEGACY')
DARK = os.environ.get('FLAG_DARK_MODE')
";
    let scan = scan_source(Language::Python, source);
    assert_eq!(scan.hits.len(), 1);
    let line = |line: u64, text: &str, why: &str| SourceGrepOnly {
        line,
        text: text.to_owned(),
        why: why.to_owned(),
    };
    assert_eq!(
        scan.grep_only,
        [
            line(
                1,
                "# never call os.environ.get on a FLAG_ variable",
                "names os.environ.get but calls it with no variable's name"
            ),
            line(
                2,
                "HOME = os.environ.get('HOME')  # FLAG_X is not read here",
                "reads HOME, not a FLAG_* variable"
            ),
            line(
                3,
                "LEGACY = os.environ.get('MY_FLAG_LEGACY')",
                "reads MY_FLAG_LEGACY, not a FLAG_* variable"
            ),
        ]
    );
}

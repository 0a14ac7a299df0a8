//! `cargo xtask`: the project's automation, in Rust rather than shell.
//!
//! - `cargo xtask tidy`: checks the architecture invariants of ARCHITECTURE.md that a
//!   program can check (also run by `cargo test`, see `tidy.rs`).

mod tidy;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["tidy"] => match tidy::problems(&tidy::workspace_root()) {
            Ok(problems) if problems.is_empty() => {
                println!("tidy: ok");
                ExitCode::SUCCESS
            }
            Ok(problems) => {
                for problem in &problems {
                    eprintln!("tidy: {problem}");
                }
                ExitCode::from(1)
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("usage: cargo xtask tidy");
            ExitCode::from(2)
        }
    }
}

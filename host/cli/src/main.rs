//! The `simkit` command-line tool.

fn main() {
    println!("simkit {}", env!("CARGO_PKG_VERSION"));
}

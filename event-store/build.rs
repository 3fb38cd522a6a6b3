// `sqlx::migrate!` embeds ../migrations at compile time: rebuild when a migration is added
// or changed (the sqlx documentation's recommendation), or new migrations never run.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}

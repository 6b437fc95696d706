// The client: a native program that connects to the database and calls its reducers.
//
// Its typed API (`DbConnection`, the `person` table, the `add` and `say_hello` reducers) is generated from the module:
//
//     spacetime generate --lang rust --out-dir src/module_bindings --module-path spacetimedb
//
// then declare it here with `mod module_bindings;` and connect with
// `module_bindings::DbConnection::builder().with_uri(host).with_database_name(database).build()`.
use std::env;

fn main() {
    let host = env::var("SPACETIMEDB_HOST").unwrap_or_else(|_| "http://127.0.0.1:3000".to_string());
    let database = env::var("SPACETIMEDB_DB_NAME").unwrap_or_else(|_| "my-database".to_string());
    println!("SpacetimeDB client for database `{database}` at {host}");
    println!("Generate the bindings (see the top of src/main.rs) to connect and call `add` / `say_hello`.");
}

// The client: a console program that connects to the database and calls its reducers.
//
// Its typed API (DbConnection, the Person table, the Add and SayHello reducers) is generated from the module:
//
//     spacetime generate --lang csharp --out-dir module_bindings --module-path spacetimedb
//
// then connect with DbConnection.Builder().WithUri(host).WithDatabaseName(database).Build().
using System;

var host = Environment.GetEnvironmentVariable("SPACETIMEDB_HOST") ?? "http://127.0.0.1:3000";
var database = Environment.GetEnvironmentVariable("SPACETIMEDB_DB_NAME") ?? "my-database";
Console.WriteLine($"SpacetimeDB client for database `{database}` at {host}");
Console.WriteLine("Generate the bindings (see the top of Program.cs) to connect and call Add / SayHello.");

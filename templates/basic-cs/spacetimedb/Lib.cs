// The SpacetimeDB module: tables and reducers run inside the database.
using SpacetimeDB;

public static partial class Module
{
    // Everyone Add has been called with; public, so every client may subscribe to it.
    [Table(Accessor = "Person", Public = true)]
    public partial struct Person
    {
        public string Name;
    }

    [Reducer(ReducerKind.Init)]
    public static void Init(ReducerContext ctx)
    {
        // Runs once, when the database is first published.
    }

    [Reducer]
    public static void Add(ReducerContext ctx, string name)
    {
        ctx.Db.Person.Insert(new Person { Name = name });
    }

    [Reducer]
    public static void SayHello(ReducerContext ctx)
    {
        foreach (var person in ctx.Db.Person.Iter())
        {
            Log.Info($"Hello, {person.Name}!");
        }
        Log.Info("Hello, World!");
    }
}

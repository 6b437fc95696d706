// Minimal typings for the part of better-sqlite3@12 the SQLite baseline uses (@types/better-sqlite3 is not installed).
declare module 'better-sqlite3' {
  interface Statement<P extends unknown[] = unknown[]> {
    get(...params: P): unknown;
    run(...params: P): { changes: number };
  }
  interface Db {
    pragma(text: string): unknown;
    exec(sql: string): void;
    prepare<P extends unknown[] = unknown[]>(sql: string): Statement<P>;
    transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
    defaultSafeIntegers(on: boolean): Db;
    close(): void;
  }
  const Database: new (file: string) => Db;
  export default Database;
}

interface ImportMetaEnv {
  readonly PUBLIC_SPACETIMEDB_HOST?: string;
  readonly PUBLIC_SPACETIMEDB_DB_NAME?: string;
}

// Client bindings for test/fixtures/modules/basic, written by hand in the shape `spacetime generate --lang
// typescript` produces (one index module: tables schema, reducers schema, REMOTE_MODULE, DbConnection).
// Replace with generated output once our `spacetime generate` exists.
import {
  DbConnectionBuilder as __DbConnectionBuilder,
  DbConnectionImpl as __DbConnectionImpl,
  SubscriptionBuilderImpl as __SubscriptionBuilderImpl,
  convertToAccessorMap as __convertToAccessorMap,
  makeQueryBuilder as __makeQueryBuilder,
  procedures as __procedures,
  reducerSchema as __reducerSchema,
  reducers as __reducers,
  schema as __schema,
  t as __t,
  table as __table,
  type DbConnectionConfig as __DbConnectionConfig,
  type QueryBuilder as __QueryBuilder,
  type RemoteModule as __RemoteModule,
} from 'spacetimedb';

export const PersonRow = __t.row({ name: __t.string() });
export const AddReducer = { name: __t.string() };
export const SayHelloReducer = {};

const tablesSchema = __schema({
  person: __table({ name: 'person', indexes: [], constraints: [] }, PersonRow),
});

const reducersSchema = __reducers(
  __reducerSchema('add', AddReducer),
  __reducerSchema('sayHello', SayHelloReducer),
);

const proceduresSchema = __procedures();

const REMOTE_MODULE = {
  versionInfo: { cliVersion: '2.0.0' as const },
  tables: tablesSchema.schemaType.tables,
  reducers: reducersSchema.reducersType.reducers,
  ...proceduresSchema,
} satisfies __RemoteModule<typeof tablesSchema.schemaType, typeof reducersSchema.reducersType, typeof proceduresSchema>;

export const tables: __QueryBuilder<typeof tablesSchema.schemaType> = __makeQueryBuilder(tablesSchema.schemaType);
export const reducers = __convertToAccessorMap(reducersSchema.reducersType.reducers);

export class SubscriptionBuilder extends __SubscriptionBuilderImpl<typeof REMOTE_MODULE> {}
export class DbConnectionBuilder extends __DbConnectionBuilder<DbConnection> {}

export class DbConnection extends __DbConnectionImpl<typeof REMOTE_MODULE> {
  static builder = (): DbConnectionBuilder =>
    new DbConnectionBuilder(REMOTE_MODULE, (config: __DbConnectionConfig<typeof REMOTE_MODULE>) => new DbConnection(config));

  override subscriptionBuilder = (): SubscriptionBuilder => new SubscriptionBuilder(this);
}

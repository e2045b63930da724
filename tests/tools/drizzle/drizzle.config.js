// drizzle-kit against the throwaway cluster of tests/tools/run, as the
// table-owning application role (TG_TOOLS_URL).
export default {
  dialect: 'postgresql',
  schema: './schema.js',
  dbCredentials: { url: process.env.TG_TOOLS_URL },
};

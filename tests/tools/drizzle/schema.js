// The application's view of its table: no policies, no row-level security,
// no default on tenant_id (what a Drizzle schema written before
// tenant_guard looks like). `drizzle-kit push` wants the database to match.
import { pgTable, integer, text } from 'drizzle-orm/pg-core';

export const docs = pgTable('docs', {
  id: integer('id').primaryKey(),
  tenant_id: text('tenant_id').notNull(),
  body: text('body'),
});

-- The committing backfill: a procedure looping over tenant_guard.backfill_batch
-- (src/backfill.rs), COMMITting after every batch.
--
-- A procedure that COMMITs can have no SET clause (and cannot be SECURITY
-- DEFINER), so it runs with the caller's rights and search_path: every
-- function, type and operator in it is qualified instead. The batches run as
-- the child's owner inside backfill_batch, after its checks of the caller's
-- rights.
CREATE PROCEDURE tenant_guard.backfill(
    child regclass,
    via_constraint text,
    batch_size integer DEFAULT 10000,
    tenant_column text DEFAULT NULL,
    max_retries integer DEFAULT 10)
LANGUAGE plpgsql
AS $body$
DECLARE
    r pg_catalog.record;  -- qualified: a type named "record" on the search_path must not be used
    pos pg_catalog.int8;
    done pg_catalog.int8 := 0;
    walk_filled pg_catalog.int8;
    at_start pg_catalog.int8;
    batches pg_catalog.int4 := 0;
    walks pg_catalog.int4 := 0;
    tries pg_catalog.int4;
    t0 pg_catalog.float8 := pg_catalog.date_part('epoch'::pg_catalog.text, pg_catalog.clock_timestamp());
    secs pg_catalog.float8;
BEGIN
    -- Inside a transaction block (or a function) a procedure cannot commit:
    -- fail here (2D000 "invalid transaction termination"), before any work.
    COMMIT;
    LOOP
        walks := walks OPERATOR(pg_catalog.+) 1;
        walk_filled := 0;
        pos := 0;
        LOOP
            tries := 0;
            LOOP
                BEGIN
                    SELECT * INTO STRICT r
                      FROM tenant_guard.backfill_batch(child, via_constraint, pos, batch_size, tenant_column);
                    EXIT;
                EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
                    tries := tries OPERATOR(pg_catalog.+) 1;
                    IF tries OPERATOR(pg_catalog.>) max_retries THEN
                        RAISE;
                    END IF;
                    RAISE NOTICE 'backfill: batch failed with %, retry % of %', SQLSTATE, tries, max_retries;
                    PERFORM pg_catalog.pg_sleep(0.1::pg_catalog.float8 OPERATOR(pg_catalog.*) tries::pg_catalog.float8);
                END;
            END LOOP;
            COMMIT;
            IF at_start IS NULL THEN
                at_start := r.null_rows;
            END IF;
            IF r.rows_updated OPERATOR(pg_catalog.>) 0 THEN
                batches := batches OPERATOR(pg_catalog.+) 1;
                done := done OPERATOR(pg_catalog.+) r.rows_updated;
                walk_filled := walk_filled OPERATOR(pg_catalog.+) r.rows_updated;
                secs := pg_catalog.date_part('epoch'::pg_catalog.text, pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.-) t0;
                RAISE NOTICE 'backfill: batch %: % rows, % done, about % left', batches, r.rows_updated, done,
                    GREATEST(at_start OPERATOR(pg_catalog.-) done, 0::pg_catalog.int8)
                  USING DETAIL = pg_catalog.format(
                    'Rows left: rows with no tenant when the backfill started minus rows filled since. %s rows/s; block %s of %s; %s s.',
                    (done::pg_catalog.float8 OPERATOR(pg_catalog./) GREATEST(secs, 0.001::pg_catalog.float8))::pg_catalog.int8,
                    COALESCE(r.next_block, r.blocks), r.blocks,
                    pg_catalog.round(secs::pg_catalog.numeric, 1));
            END IF;
            EXIT WHEN r.next_block IS NULL;
            pos := r.next_block;
        END LOOP;
        -- Rows that were locked by other transactions, or added behind the
        -- walk: walk again while that fills something.
        EXIT WHEN r.fillable_rows_left OPERATOR(pg_catalog.=) 0 OR walk_filled OPERATOR(pg_catalog.=) 0
               OR walks OPERATOR(pg_catalog.>=) 10;
        RAISE NOTICE 'backfill: % row(s) were locked or added during the walk: walking the table again', r.fillable_rows_left;
    END LOOP;
    secs := pg_catalog.date_part('epoch'::pg_catalog.text, pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.-) t0;
    RAISE NOTICE 'backfill: % rows filled in % batches', done, batches
      USING DETAIL = pg_catalog.format('%s s, %s rows/s, %s walk(s) of the table.',
                         pg_catalog.round(secs::pg_catalog.numeric, 1),
                         (done::pg_catalog.float8 OPERATOR(pg_catalog./) GREATEST(secs, 0.001::pg_catalog.float8))::pg_catalog.int8,
                         walks);
    IF r.null_rows_left OPERATOR(pg_catalog.>) r.fillable_rows_left THEN
        RAISE NOTICE 'backfill: % row(s) of % still have no tenant: their parent through "%" has none, or they have no parent',
            r.null_rows_left OPERATOR(pg_catalog.-) r.fillable_rows_left, child, via_constraint;
    END IF;
    IF r.fillable_rows_left OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'backfill: % row(s) could still be filled (locked by other transactions, or added during the backfill): CALL it again',
            r.fillable_rows_left;
    END IF;
END
$body$;

REVOKE ALL ON PROCEDURE tenant_guard.backfill(regclass, text, integer, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenant_guard.backfill_batch(regclass, text, bigint, integer, text) FROM PUBLIC;
COMMENT ON PROCEDURE tenant_guard.backfill(regclass, text, integer, text, integer) IS
  'fill NULL tenant ids from the parent reached through a foreign key, committing every batch (CALL outside a transaction block); resumable, retries 40P01/55P03';
COMMENT ON FUNCTION tenant_guard.backfill_batch(regclass, text, bigint, integer, text) IS
  'one batch of a backfill, from block from_block, as the child''s owner; returns rows_updated and next_block (NULL at the end of the table)';

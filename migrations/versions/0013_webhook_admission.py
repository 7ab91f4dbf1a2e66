"""Webhook ingress writes a batch of deliveries, for any shops, in one statement.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28

`blossom_admit_webhooks` runs as its caller (`blossom_app`), so row-level security stays in
force: each shop's rows are written under that shop's own `app.shop_id`. Shops are resolved
through `blossom_shop_lookup`, as a single delivery's were. Each stored delivery gets one job,
its args completed with `shop_id` and `event_id`; a delivery whose webhook id is already
stored (or repeated earlier in the batch) and one of an unknown shop are not stored.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SIGNATURE = (
    "blossom_admit_webhooks(uuid[], text[], text[], text[], text[], timestamptz[], text[], "
    "text[], jsonb[], text, varchar, varchar, integer)"
)


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION blossom_admit_webhooks(
            ids uuid[], domains text[], topics text[], webhook_ids text[],
            shopify_event_ids text[], triggered_ats timestamptz[], api_versions text[],
            payloads text[], job_args jsonb[], initial_status text,
            job_queue varchar, job_task varchar, job_priority integer
        )
        RETURNS TABLE (event_id uuid, shop_id uuid, stored boolean)
        LANGUAGE plpgsql VOLATILE SET search_path = public
        AS $$
        #variable_conflict use_variable
        DECLARE
            shops uuid[];
            shop uuid;
            written uuid[];
            stored_ids uuid[] := '{}';
        BEGIN
            -- Each distinct domain is looked up once, however many deliveries it sent.
            shops := ARRAY(
                WITH resolved AS (
                    SELECT u.domain, (SELECT l.id FROM blossom_shop_lookup(u.domain) AS l) AS id
                      FROM (SELECT DISTINCT domain FROM unnest(domains) AS domain) AS u
                )
                SELECT r.id
                  FROM unnest(domains) WITH ORDINALITY AS d(domain, ord)
                  JOIN resolved AS r ON r.domain = d.domain
                 ORDER BY d.ord
            );
            -- Rows go in (shop, webhook id) order, so concurrent batches that repeat each
            -- other's deliveries wait on one another instead of deadlocking.
            FOR shop IN SELECT DISTINCT s FROM unnest(shops) AS s WHERE s IS NOT NULL ORDER BY s
            LOOP
                PERFORM set_config('app.shop_id', shop::text, true);
                WITH inserted AS (
                    INSERT INTO webhook_events AS w (id, shop_id, topic, webhook_id, event_id,
                                                     triggered_at, api_version, payload, status)
                    SELECT ids[i], shop, topics[i], webhook_ids[i], shopify_event_ids[i],
                           triggered_ats[i], api_versions[i], payloads[i], initial_status
                      FROM generate_subscripts(ids, 1) AS i
                     WHERE shops[i] = shop
                     ORDER BY webhook_ids[i], i
                    ON CONFLICT ON CONSTRAINT uq_webhook_events_shop_webhook DO NOTHING
                    RETURNING w.id
                )
                SELECT array_agg(inserted.id) INTO written FROM inserted;
                CONTINUE WHEN written IS NULL;
                PERFORM procrastinate_defer_jobs_v1(ARRAY(
                    SELECT ROW(job_queue, job_task, job_priority, NULL, NULL,
                               job_args[i] || jsonb_build_object('shop_id', shop,
                                                                 'event_id', ids[i]),
                               NULL)::procrastinate_job_to_defer_v1
                      FROM generate_subscripts(ids, 1) AS i
                     WHERE ids[i] = ANY(written)
                     ORDER BY i
                ));
                stored_ids := stored_ids || written;
            END LOOP;
            RETURN QUERY
                SELECT ids[i], shops[i], ids[i] = ANY(stored_ids)
                  FROM generate_subscripts(ids, 1) AS i
                 ORDER BY i;
        END
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SIGNATURE} TO blossom_app")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")

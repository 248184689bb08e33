{#-
    Every delivery source row (each history sheet row, each app delivery), decided once:
    quarantined with a reason, or part of a delivery as its primary row or merged into it.
    The marts only read this decision. The merge rule (documented in
    _deliveries__models.yml) in short:

    1. A row is quarantined by the first reason that holds, in the catalogue's order:
       invalid_client_code, unknown_client, test_client, cancelled, date_*,
       invalid_quantity, negative_quantity, no_positive_quantity.
    2. History rows of one client and day with the same content (time, salesperson and
       every product quantity) are one delivery: the first by (file, sheet, row) is primary,
       the others are merged into it (exact duplicates, re-sent rows of a later file).
    3. An app delivery with the same client, day and cylinders by size as a history delivery
       is the same event: merged into the history row (the history has the products, the app
       only sizes). Pairs are made in order when a day has several candidates.
    4. The key of a delivery is md5(client code | day | n), n its place among the client's
       deliveries of that day (history first, by time and content; then the app's, by time
       and id): the same source rows give the same key on every build and machine.
-#}
with

history as (

    select * from {{ ref('stg_delivery_history__deliveries') }}

),

app as (

    select * from {{ ref('stg_legacy_app__deliveries') }}

),

items as (

    select * from {{ ref('int_delivery_items_conformed') }}

),

customers as (

    select client_code from {{ ref('customers') }}

),

app_clients as (

    select
        app_client_id,
        client_code,
        quarantine_reason
    from {{ ref('int_app_clients_matched') }}

),

-- what a row delivered, as text: every product, and the cylinders by size
row_items as (

    select
        source_system,
        source_file,
        source_sheet,
        source_row,
        string_agg(
            product_code || '=' || trim_scale(quantity)::text, ',' order by product_code
        ) as items_text
    from items
    group by source_system, source_file, source_sheet, source_row

),

row_sizes as (

    select
        source_system,
        source_file,
        source_sheet,
        source_row,
        string_agg(size_part || '=' || trim_scale(quantity)::text, ',' order by size_part)
            as size_signature
    from (
        select
            source_system,
            source_file,
            source_sheet,
            source_row,
            case
                when product_kind = 'cylinder' then 'c' || lpad(size_kg::text, 3, '0')
                else product_code
            end as size_part,
            sum(quantity) as quantity
        from items
        group by
            source_system,
            source_file,
            source_sheet,
            source_row,
            size_part
    ) as by_size
    group by source_system, source_file, source_sheet, source_row

),

history_rows as (

    select
        'history' as source_system,
        history.source_file,
        history.source_sheet,
        history.source_row,
        history.load_id,
        history.client_code,
        history.client_code_raw,
        null::bigint as app_client_id,
        null::bigint as app_delivery_id,
        history.delivery_date,
        history.delivery_date_raw,
        history.delivery_time,
        history.salesperson,
        null::text as driver_name,
        null::text as vehicle_plate,
        history.short_name,
        history.address,
        history.address_raw,
        case
            when history.client_code is null then 'invalid_client_code'
            when customers.client_code is null then 'unknown_client'
            when history.delivery_date_reason is not null
                then 'date_' || history.delivery_date_reason
            when history.has_invalid_quantity then 'invalid_quantity'
            when history.has_negative_quantity then 'negative_quantity'
            when not history.has_positive_quantity then 'no_positive_quantity'
        end as quarantine_reason
    from history
    left join customers on history.client_code = customers.client_code

),

app_rows as (

    select
        'app' as source_system,
        app.source_file,
        app.source_sheet,
        app.source_row,
        app.load_id,
        app_clients.client_code,
        app.app_client_id_raw as client_code_raw,
        app.app_client_id,
        app.app_delivery_id,
        app.delivery_date,
        app.delivery_date_raw,
        app.delivery_time,
        null::text as salesperson,
        app.driver_name,
        app.vehicle_plate,
        null::text as short_name,
        null::text as address,
        null::text as address_raw,
        case
            when app_clients.app_client_id is null then 'unknown_client'
            when app_clients.quarantine_reason = 'test_client' then 'test_client'
            when customers.client_code is null then 'unknown_client'
            when app.status = 'cancelled' then 'cancelled'
            when app.delivery_date_reason is not null then 'date_' || app.delivery_date_reason
            when app.has_invalid_quantity then 'invalid_quantity'
            when app.has_negative_quantity then 'negative_quantity'
            when not app.has_positive_quantity then 'no_positive_quantity'
        end as quarantine_reason
    from app
    left join app_clients on app.app_client_id = app_clients.app_client_id
    left join customers on app_clients.client_code = customers.client_code

),

described as (

    select
        all_rows.*,
        row_items.items_text,
        row_sizes.size_signature,
        -- what makes two history rows the same delivery (rule 2); an app row is only itself
        case
            when all_rows.source_system = 'history'
                then md5(concat_ws(
                    '|',
                    all_rows.client_code,
                    all_rows.delivery_date,
                    all_rows.delivery_time,
                    all_rows.salesperson,
                    row_items.items_text
                ))
            else md5('app|' || all_rows.app_delivery_id::text)
        end as content_hash
    from (
        select * from history_rows
        union all
        select * from app_rows
    ) as all_rows
    left join row_items
        on
            all_rows.source_system = row_items.source_system
            and all_rows.source_file = row_items.source_file
            and all_rows.source_sheet = row_items.source_sheet
            and all_rows.source_row = row_items.source_row
    left join row_sizes
        on
            all_rows.source_system = row_sizes.source_system
            and all_rows.source_file = row_sizes.source_file
            and all_rows.source_sheet = row_sizes.source_sheet
            and all_rows.source_row = row_sizes.source_row

),

-- The rules below are window functions over the rows that are not quarantined, never
-- self-joins: PostgreSQL cannot estimate joins between CTEs, and a nested loop over
-- 500k rows would take hours.
candidates as (

    select * from described
    where quarantine_reason is null

),

-- rule 2: history rows of the same content are one delivery; the first row is primary
copies as (

    select
        *,
        case
            when source_system = 'history'
                then dense_rank() over (
                    partition by source_system, client_code, delivery_date
                    order by delivery_time nulls last, content_hash
                )
        end as history_ordinal,
        row_number() over same_content as nth_copy,
        first_value(source_file) over same_content as first_source_file,
        first_value(source_sheet) over same_content as first_source_sheet,
        first_value(source_row) over same_content as first_source_row
    from candidates
    window same_content as (
        partition by source_system, client_code, delivery_date, content_hash
        order by source_file, source_sheet, source_row
    )

),

-- rule 3: number the history deliveries and the app rows of each client, day and sizes
numbered as (

    select
        *,
        row_number() over (
            partition by client_code, delivery_date, size_signature, source_system, nth_copy = 1
            order by history_ordinal, app_delivery_id
        ) as nth_of_signature,
        max(history_ordinal) over (
            partition by client_code, delivery_date
        ) as history_deliveries
    from copies

),

-- ... and pair the n-th app row with the n-th history delivery
paired as (

    select
        *,
        max(history_ordinal) filter (
            where source_system = 'history' and nth_copy = 1
        ) over same_pair as paired_ordinal,
        max(source_file) filter (
            where source_system = 'history' and nth_copy = 1
        ) over same_pair as paired_source_file,
        max(source_sheet) filter (
            where source_system = 'history' and nth_copy = 1
        ) over same_pair as paired_source_sheet,
        max(source_row) filter (
            where source_system = 'history' and nth_copy = 1
        ) over same_pair as paired_source_row
    from numbered
    window same_pair as (
        partition by client_code, delivery_date, size_signature, nth_of_signature
    )

),

-- the app rows left unpaired are deliveries of their own, after the history's of the day
decided as (

    select
        {{ delivery_row_columns() }},
        case
            when source_system = 'history' and nth_copy = 1 then 'primary'
            when source_system = 'history' then 'merged'
            when paired_ordinal is not null then 'merged'
            else 'primary'
        end as source_role,
        case
            when source_system = 'history' and nth_copy > 1 then 'exact_duplicate'
            when source_system = 'app' and paired_ordinal is not null then 'same_event_in_app'
        end as merge_rule,
        case
            when source_system = 'history' then history_ordinal
            when paired_ordinal is not null then paired_ordinal
            else coalesce(history_deliveries, 0) + row_number() over (
                partition by
                    client_code,
                    delivery_date,
                    source_system = 'app' and paired_ordinal is null
                order by delivery_time nulls last, app_delivery_id
            )
        end as ordinal,
        case
            when source_system = 'history' then first_source_file
            when paired_ordinal is not null then paired_source_file
            else source_file
        end as primary_source_file,
        case
            when source_system = 'history' then first_source_sheet
            when paired_ordinal is not null then paired_source_sheet
            else source_sheet
        end as primary_source_sheet,
        case
            when source_system = 'history' then first_source_row
            when paired_ordinal is not null then paired_source_row
            else source_row
        end as primary_source_row
    from paired

    union all

    select
        {{ delivery_row_columns() }},
        'quarantined' as source_role,
        null::text as merge_rule,
        null::bigint as ordinal,
        null::text as primary_source_file,
        null::text as primary_source_sheet,
        null::integer as primary_source_row
    from described
    where quarantine_reason is not null

),

keyed as (

    select
        *,
        case
            when ordinal is not null
                then md5(client_code || '|' || delivery_date::text || '|' || ordinal::text)
        end as delivery_key,
        -- the newest load holding a row of this client and day: the marts' watermark
        max(load_id) over (partition by client_code, delivery_date) as last_load_id
    from decided

)

select * from keyed

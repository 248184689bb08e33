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
        md5(concat_ws(
            '|',
            all_rows.client_code,
            all_rows.delivery_date,
            all_rows.delivery_time,
            all_rows.salesperson,
            row_items.items_text
        )) as content_hash
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

-- rule 2: history rows of the same content; the first is the delivery's primary row
history_copies as (

    select
        *,
        row_number() over (
            partition by client_code, delivery_date, content_hash
            order by source_file, source_sheet, source_row
        ) as nth_copy
    from described
    where source_system = 'history' and quarantine_reason is null

),

history_primary as (

    select
        *,
        row_number() over (
            partition by client_code, delivery_date
            order by delivery_time nulls last, content_hash
        ) as ordinal,
        row_number() over (
            partition by client_code, delivery_date, size_signature
            order by delivery_time nulls last, content_hash
        ) as nth_of_signature
    from history_copies
    where nth_copy = 1

),

history_merged as (

    select
        history_copies.*,
        history_primary.ordinal,
        history_primary.source_file as primary_source_file,
        history_primary.source_sheet as primary_source_sheet,
        history_primary.source_row as primary_source_row
    from history_copies
    inner join history_primary
        on
            history_copies.client_code = history_primary.client_code
            and history_copies.delivery_date = history_primary.delivery_date
            and history_copies.content_hash = history_primary.content_hash
    where history_copies.nth_copy > 1

),

-- rule 3: app deliveries paired with history deliveries of the same client, day and sizes
app_candidates as (

    select
        *,
        row_number() over (
            partition by client_code, delivery_date, size_signature
            order by app_delivery_id
        ) as nth_of_signature
    from described
    where source_system = 'app' and quarantine_reason is null

),

app_paired as (

    select
        app_candidates.*,
        history_primary.ordinal as history_ordinal,
        history_primary.source_file as primary_source_file,
        history_primary.source_sheet as primary_source_sheet,
        history_primary.source_row as primary_source_row
    from app_candidates
    left join history_primary
        on
            app_candidates.client_code = history_primary.client_code
            and app_candidates.delivery_date = history_primary.delivery_date
            and app_candidates.size_signature = history_primary.size_signature
            and app_candidates.nth_of_signature = history_primary.nth_of_signature

),

history_per_day as (

    select
        client_code,
        delivery_date,
        count(*) as deliveries
    from history_primary
    group by client_code, delivery_date

),

app_only as (

    select
        app_paired.*,
        coalesce(history_per_day.deliveries, 0) + row_number() over (
            partition by app_paired.client_code, app_paired.delivery_date
            order by app_paired.delivery_time nulls last, app_paired.app_delivery_id
        ) as ordinal
    from app_paired
    left join history_per_day
        on
            app_paired.client_code = history_per_day.client_code
            and app_paired.delivery_date = history_per_day.delivery_date
    where app_paired.history_ordinal is null

),

decided as (

    select
        {{ delivery_row_columns() }},
        'primary' as source_role,
        null::text as merge_rule,
        ordinal,
        source_file as primary_source_file,
        source_sheet as primary_source_sheet,
        source_row as primary_source_row
    from history_primary

    union all

    select
        {{ delivery_row_columns() }},
        'merged' as source_role,
        'exact_duplicate' as merge_rule,
        ordinal,
        primary_source_file,
        primary_source_sheet,
        primary_source_row
    from history_merged

    union all

    select
        {{ delivery_row_columns() }},
        'merged' as source_role,
        'same_event_in_app' as merge_rule,
        history_ordinal as ordinal,
        primary_source_file,
        primary_source_sheet,
        primary_source_row
    from app_paired
    where history_ordinal is not null

    union all

    select
        {{ delivery_row_columns() }},
        'primary' as source_role,
        null::text as merge_rule,
        ordinal,
        source_file as primary_source_file,
        source_sheet as primary_source_sheet,
        source_row as primary_source_row
    from app_only

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

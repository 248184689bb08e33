-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
-- depends_on: {{ ref('int_delivery_rows_to_reclassify') }}
-- depends_on: {{ ref('int_app_clients_matched') }}
{#-
    Every delivery source row (each row of a history table of either layout, each app
    delivery), decided once: quarantined with a reason, or part of a delivery as its primary
    row or merged into it. The marts only read this decision. The merge rule (documented in
    _deliveries__models.yml) in short:

    1. A row is quarantined by the first reason that holds, in the precedence of the
       catalogue (seeds/quarantine_reasons.csv, macro first_quarantine_reason). History
       rows: invalid_client_code, date_*, and only where the layout records quantities
       (history_transaction) invalid_quantity, negative_quantity, no_positive_quantity. A
       valid code is always a customer (the master's, or one the history itself describes),
       so a history row is never unknown_client. App rows: test_client, unknown_client (no
       such app client, or a code no client source has), date_* first; the rest
       (cancelled, not_delivered, invalid_quantity, negative_quantity) only for an app row
       that is no history delivery's twin (rule 4).
    2. history_daily rows (one per client and delivery day) of one client and day are one
       delivery: the first by (file, sheet, row) is primary, the others merged
       (same_client_day).
    3. history_transaction rows of one client and day with the same content (time,
       salesperson and every quantity) are one delivery (exact_duplicate). A history_daily
       row of a day that has transaction rows is merged into that day's first transaction
       delivery, which records the items (same_client_day).
    4. The n-th app row of a client and day (by time, then id) is the n-th history delivery
       of that day, whatever its quantities and status: merged into it
       (same_event_in_app). The app brings its status, driver, vehicle and time; where the
       history row records no items, the app's quantities (if positive and valid) are the
       delivery's items. App rows left over are deliveries of their own.
    5. The key of a delivery is md5(client code | day | n), n its place among the client's
       deliveries of that day (history first, by layout, time and content; then the app's,
       by time and id): the same source rows give the same key on every build and machine.

    Incremental (macros/incremental/delivery_classification_plan.sql, documented in the
    yml): only the client-days and rows int_delivery_rows_to_reclassify lists, and the rows
    of sources new to it, are classified again (pre-hook delete_reclassified_rows).
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    indexes=[
        {'columns': ['load_id', 'source_file', 'source_sheet']},
        {'columns': ['client_code', 'delivery_date']},
    ],
    pre_hook=["{{ delete_reclassified_rows(ref('int_delivery_rows_to_reclassify')) }}"],
    post_hook=["{{ comment_model_state({'inputs': delivery_classification_plan(none).fingerprint}) }}",
        "{{ analyze_if_new() }}"]
) }}
{%- set plan = delivery_classification_plan(this if is_incremental() else none) -%}
{%- set partial = is_incremental() and not plan.all %}
{%- set reclassify = ref('int_delivery_rows_to_reclassify') %}
with

history as (

    select history.* from {{ ref('stg_delivery_history__deliveries') }} as history
    {%- if partial %}
        where {{ reclassified_rows_filter('history', 'history.client_code', reclassify, plan.new) }}
    {%- endif %}

),

-- the app's deliveries with the driver's name and the vehicle's plate
app as (

    select
        deliveries.*,
        drivers.driver_name,
        vehicles.vehicle_plate
    from {{ ref('stg_legacy_app__deliveries') }} as deliveries
    left join {{ ref('stg_legacy_app__drivers') }} as drivers
        on deliveries.driver_id = drivers.driver_id
    left join {{ ref('stg_legacy_app__vehicles') }} as vehicles
        on deliveries.vehicle_id = vehicles.vehicle_id
    {%- if partial %}
        left join {{ ref('int_app_clients_matched') }} as selected_clients
            on deliveries.app_client_id = selected_clients.app_client_id
        where {{ reclassified_rows_filter(
            'deliveries', 'selected_clients.client_code', reclassify, plan.new) }}
    {%- endif %}

),

-- the items of the rows classified here
items as (

    select items.*
    from {{ ref('int_delivery_items_conformed') }} as items
    {%- if partial %}
        where {{ row_key_in('items', ['history', 'app']) }}
    {%- endif %}

),

-- every client code that is a customer's
customer_codes as (

    select client_code from {{ ref('int_customer_codes_unioned') }}

),

app_clients as (

    select
        app_client_id,
        client_code,
        quarantine_reason
    from {{ ref('int_app_clients_matched') }}

),

-- what a row delivered, as text: every product and its quantity
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

history_rows as (

    select
        'history' as source_system,
        history.source_file,
        history.source_sheet,
        history.source_row,
        history.load_id,
        history.layout,
        history.items_recorded,
        history.client_code,
        history.client_code_raw,
        null::bigint as app_client_id,
        null::bigint as app_delivery_id,
        null::text as app_status,
        history.delivery_date,
        history.delivery_date_raw,
        history.delivery_time,
        history.salesperson,
        null::text as driver_name,
        null::text as vehicle_plate,
        null::text as app_notes,
        null::text as app_returned,
        history.short_name,
        history.address,
        history.address_raw,
        false as has_valid_positive_quantity,
        {{ first_quarantine_reason({
            'invalid_client_code': 'history.client_code is null',
            'unknown_client': 'customer_codes.client_code is null',
            'date_empty': "history.delivery_date_reason = 'empty'",
            'date_unparseable': "history.delivery_date_reason = 'unparseable'",
            'date_not_calendar_date': "history.delivery_date_reason = 'not_calendar_date'",
            'date_out_of_range': "history.delivery_date_reason = 'out_of_range'",
            'invalid_quantity': 'history.items_recorded and history.has_invalid_quantity',
            'negative_quantity': 'history.items_recorded and history.has_negative_quantity',
            'no_positive_quantity':
                'history.items_recorded and not history.has_positive_quantity',
        }) }} as identity_reason,
        null::text as content_reason
    from history
    left join customer_codes on history.client_code = customer_codes.client_code

),

app_rows as (

    select
        'app' as source_system,
        app.source_file,
        app.source_sheet,
        app.source_row,
        app.load_id,
        'app_deliveries' as layout,
        true as items_recorded,
        app_clients.client_code,
        app.app_client_id_raw as client_code_raw,
        app.app_client_id,
        app.app_delivery_id,
        app.status as app_status,
        app.delivery_date,
        app.delivery_date_raw,
        app.delivery_time,
        null::text as salesperson,
        app.driver_name,
        app.vehicle_plate,
        app.notes as app_notes,
        app.returned_cylinders as app_returned,
        null::text as short_name,
        null::text as address,
        null::text as address_raw,
        (
            app.has_positive_quantity
            and not app.has_negative_quantity
            and not app.has_invalid_quantity
        ) as has_valid_positive_quantity,
        -- an app client id that is no app client's has no code: unknown_client too
        {{ first_quarantine_reason({
            'test_client': "app_clients.quarantine_reason = 'test_client'",
            'unknown_client': 'customer_codes.client_code is null',
            'date_empty': "app.delivery_date_reason = 'empty'",
            'date_unparseable': "app.delivery_date_reason = 'unparseable'",
            'date_not_calendar_date': "app.delivery_date_reason = 'not_calendar_date'",
            'date_out_of_range': "app.delivery_date_reason = 'out_of_range'",
        }) }} as identity_reason,
        {{ first_quarantine_reason({
            'cancelled': "app.status = 'cancelled'",
            'not_delivered': "coalesce(app.status, '') <> 'completed'",
            'invalid_quantity': 'app.has_invalid_quantity',
            'negative_quantity': 'app.has_negative_quantity',
        }) }} as content_reason
    from app
    left join app_clients on app.app_client_id = app_clients.app_client_id
    left join customer_codes on app_clients.client_code = customer_codes.client_code

),

described as (

    select
        all_rows.*,
        row_items.items_text,
        -- what makes two history rows the same delivery (rules 2 and 3); an app row is only
        -- itself
        case
            when all_rows.source_system = 'app'
                then md5('app|' || all_rows.app_delivery_id::text)
            when all_rows.layout = 'history_daily'
                then md5(concat_ws('|', 'day', all_rows.client_code, all_rows.delivery_date))
            else md5(concat_ws(
                '|',
                all_rows.client_code,
                all_rows.delivery_date,
                all_rows.delivery_time,
                all_rows.salesperson,
                row_items.items_text
            ))
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

),

-- The rules below are window functions over the rows that are not quarantined, never
-- self-joins: PostgreSQL cannot estimate joins between CTEs, and a nested loop over
-- 500k rows would take hours. Rows quarantined already pass in partitions of their own
-- (is_candidate): no rule sees them, and no union and final sort is needed.
candidates as (

    select
        *,
        layout = 'history_daily' as is_daily,
        identity_reason is null as is_candidate
    from described

),

-- rules 2 and 3: history rows of the same content are one delivery; a daily row joins the
-- day's first transaction delivery. One sort for all: day_order spans the day (the same
-- first_value), and app_delivery_id (NULL in history) orders the app rows for rule 4.
copies as (

    select
        *,
        bool_or(source_system = 'history' and not is_daily) over day_order
            as day_has_transaction,
        dense_rank() over (
            partition by is_candidate, source_system, client_code, delivery_date
            order by is_daily, delivery_time nulls last, app_delivery_id, content_hash
        ) as content_rank,
        row_number() over day_order as nth_of_day,
        row_number() over same_content as nth_copy,
        first_value(source_file) over same_content as first_source_file,
        first_value(source_sheet) over same_content as first_source_sheet,
        first_value(source_row) over same_content as first_source_row,
        first_value(source_file) over day_order as day_first_source_file,
        first_value(source_sheet) over day_order as day_first_source_sheet,
        first_value(source_row) over day_order as day_first_source_row
    from candidates
    window
        same_content as (
            partition by is_candidate, source_system, client_code, delivery_date, content_hash
            order by source_file, source_sheet, source_row
        ),
        day_order as (
            partition by is_candidate, source_system, client_code, delivery_date
            order by
                is_daily, delivery_time nulls last, app_delivery_id, content_hash,
                source_file, source_sheet, source_row
            rows between unbounded preceding and unbounded following
        )

),

-- rule 4: number the history deliveries and the app rows of each client and day
numbered as (

    select
        *,
        case
            when not is_candidate then null
            when source_system = 'history' and is_daily and day_has_transaction then 1
            when source_system = 'history' then content_rank
        end as history_ordinal,
        is_candidate
        and source_system = 'history'
        and nth_copy = 1
        and not (is_daily and day_has_transaction) as is_history_primary,
        case
            when not is_candidate then null
            when source_system = 'history' and is_daily and day_has_transaction then 1
            when source_system = 'history' then content_rank
            else nth_of_day
        end as pair_number
    from copies

),

-- ... and pair the n-th app row with the n-th history delivery
paired as (

    select
        *,
        max(history_ordinal) over same_day as history_deliveries,
        max(load_id) over same_day as day_last_load_id,
        max(source_file) filter (where is_history_primary) over same_pair
            as paired_source_file,
        max(source_sheet) filter (where is_history_primary) over same_pair
            as paired_source_sheet,
        max(source_row) filter (where is_history_primary) over same_pair
            as paired_source_row,
        bool_or(items_recorded) filter (where is_history_primary) over same_pair
            as paired_has_items
    from numbered
    window
        same_day as (partition by client_code, delivery_date),
        same_pair as (partition by client_code, delivery_date, pair_number)

),

-- rule 1, second part: an app row that is no history delivery's twin must be a delivery
-- of its own to pass
settled as (

    select
        *,
        case
            when not is_candidate then identity_reason
            when source_system = 'app' and paired_source_row is null then content_reason
        end as quarantine_reason
    from paired

),

-- the app rows left unpaired are deliveries of their own, after the history's of the day
app_only as (

    select
        source_file,
        source_sheet,
        source_row,
        coalesce(history_deliveries, 0) + row_number() over (
            partition by client_code, delivery_date
            order by delivery_time nulls last, app_delivery_id
        ) as ordinal
    from settled
    where
        source_system = 'app'
        and paired_source_row is null
        and quarantine_reason is null

),

decided as (

    select
        {{ delivery_row_columns('settled') }},
        settled.quarantine_reason,
        case
            when settled.quarantine_reason is not null then 'quarantined'
            when settled.is_history_primary then 'primary'
            when settled.source_system = 'history' then 'merged'
            when settled.paired_source_row is not null then 'merged'
            else 'primary'
        end as source_role,
        case
            when settled.quarantine_reason is not null then null
            when settled.source_system = 'history' and settled.is_history_primary then null
            when settled.source_system = 'history' and settled.is_daily then 'same_client_day'
            when settled.source_system = 'history' then 'exact_duplicate'
            when settled.paired_source_row is not null then 'same_event_in_app'
        end as merge_rule,
        case
            when settled.quarantine_reason is not null then null
            when settled.source_system = 'history' then settled.history_ordinal
            when settled.paired_source_row is not null then settled.pair_number
            else app_only.ordinal
        end as ordinal,
        case
            when settled.quarantine_reason is not null then null
            when settled.is_history_primary then settled.source_file
            when
                settled.source_system = 'history' and settled.is_daily
                and settled.day_has_transaction then settled.day_first_source_file
            when settled.source_system = 'history' then settled.first_source_file
            when settled.paired_source_row is not null then settled.paired_source_file
            else settled.source_file
        end as primary_source_file,
        case
            when settled.quarantine_reason is not null then null
            when settled.is_history_primary then settled.source_sheet
            when
                settled.source_system = 'history' and settled.is_daily
                and settled.day_has_transaction then settled.day_first_source_sheet
            when settled.source_system = 'history' then settled.first_source_sheet
            when settled.paired_source_row is not null then settled.paired_source_sheet
            else settled.source_sheet
        end as primary_source_sheet,
        case
            when settled.quarantine_reason is not null then null
            when settled.is_history_primary then settled.source_row
            when
                settled.source_system = 'history' and settled.is_daily
                and settled.day_has_transaction then settled.day_first_source_row
            when settled.source_system = 'history' then settled.first_source_row
            when settled.paired_source_row is not null then settled.paired_source_row
            else settled.source_row
        end as primary_source_row,
        -- whose quantities are the delivery's items: the primary row's where its layout
        -- records them, else its app twin's when they are positive and valid
        coalesce(
            settled.quarantine_reason is null
            and (
                (
                    settled.source_system = 'history' and settled.is_history_primary
                    and settled.items_recorded
                )
                or (settled.source_system = 'app' and settled.paired_source_row is null)
                or (
                    settled.source_system = 'app'
                    and settled.paired_source_row is not null
                    and not settled.paired_has_items
                    and settled.has_valid_positive_quantity
                )
            ),
            false
        ) as items_from_row,
        -- the newest load holding a row of this client and day: the marts' watermark (a
        -- row without a client or a day is of no day: its own load)
        case
            when settled.client_code is null or settled.delivery_date is null
                then settled.load_id
            else settled.day_last_load_id
        end as last_load_id
    from settled
    left join app_only
        on
            settled.source_system = 'app'
            and settled.source_file = app_only.source_file
            and settled.source_sheet = app_only.source_sheet
            and settled.source_row = app_only.source_row

),

keyed as (

    select
        {{ delivery_row_columns() }},
        quarantine_reason,
        source_role,
        merge_rule,
        ordinal,
        primary_source_file,
        primary_source_sheet,
        primary_source_row,
        items_from_row,
        case
            when ordinal is not null
                then md5(client_code || '|' || delivery_date::text || '|' || ordinal::text)
        end as delivery_key,
        last_load_id
    from decided

)

select * from keyed

-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
{{ delivery_mart_config(
    primary_key=['delivery_key'], foreign_key='client_code', references='customers'
) }}
{#- One row per delivery event (incremental: macros/incremental/delivery_mart_config.sql). -#}
with

-- read three times: not materialized, so each read is a scan of the table with its
-- statistics (a CTE's result has none: its 350k deliveries were planned as 200 groups,
-- a hash aggregate and a hash join that spilled to disk in many batches)
rows as not materialized (

    select * from {{ ref('int_delivery_rows_classified') }}
    where
        delivery_key is not null
        {{ incremental_delivery_days(ref('int_delivery_days_to_rebuild')) }}

),

items as (

    select * from {{ ref('int_delivery_items_conformed') }}

),

customers as (

    select
        client_code,
        customer_source,
        short_name,
        address
    from {{ ref('customers') }}

),

primary_rows as (

    select * from rows
    where source_role = 'primary'

),

-- what every row of a delivery brings: its source systems, and the app's driver and vehicle
lineage as (

    select
        delivery_key,
        bool_or(source_system = 'history') as in_history,
        bool_or(source_system = 'app') as in_app,
        count(*) as source_rows,
        min(app_delivery_id) as app_delivery_id,
        min(app_status) as app_status,
        min(delivery_time) filter (where source_system = 'app') as app_delivery_time,
        min(driver_name) as driver_name,
        min(vehicle_plate) as vehicle_plate,
        min(app_notes) as app_notes,
        min(app_returned) as app_returned,
        bool_or(items_from_row) as items_recorded,
        max(last_load_id) as last_load_id
    from rows
    group by delivery_key

),

-- the items: the quantities of the row that records them (the primary row, or the app
-- twin of a history row without quantities)
totals as (

    select
        item_rows.delivery_key,
        sum(items.quantity) filter (where items.product_kind = 'cylinder') as total_cylinders,
        sum(items.quantity * items.size_kg) filter (where items.product_kind = 'cylinder')
            as cylinder_kg,
        sum(items.quantity) filter (where items.product_kind = 'metered') as metered_kg
    from rows as item_rows
    inner join items
        on
            item_rows.source_system = items.source_system
            and item_rows.source_file = items.source_file
            and item_rows.source_sheet = items.source_sheet
            and item_rows.source_row = items.source_row
    where item_rows.items_from_row
    group by item_rows.delivery_key

),

final as (

    -- grouped by meaning, not by the kind of expression
    select  -- noqa: ST06
        -- keys
        primary_rows.delivery_key,
        primary_rows.client_code,
        primary_rows.delivery_date,
        primary_rows.ordinal as delivery_of_day,

        -- when and who: the history's time, else the app's
        coalesce(primary_rows.delivery_time, lineage.app_delivery_time) as delivery_time,
        primary_rows.salesperson,
        lineage.driver_name,
        lineage.vehicle_plate,
        lineage.app_status,
        lineage.app_notes,
        lineage.app_returned,

        -- what: items_recorded is false when no source row records quantities (the
        -- delivery history's 5-column layout, with no app quantities)
        coalesce(lineage.items_recorded and totals.delivery_key is not null, false)
            as items_recorded,
        coalesce(totals.total_cylinders, 0) as total_cylinders,
        coalesce(totals.metered_kg, 0) as metered_kg,
        coalesce(totals.cylinder_kg, 0) + coalesce(totals.metered_kg, 0) as total_kg,

        -- where it comes from
        case
            when lineage.in_history and lineage.in_app then 'history+app'
            when lineage.in_history then 'history'
            else 'app'
        end as source_system,
        lineage.source_rows,
        lineage.app_delivery_id,
        primary_rows.source_file,
        primary_rows.source_sheet,
        primary_rows.source_row,

        -- the client as the history row names it, and whether the master disagrees (a
        -- blank cell names nothing, so it never differs)
        primary_rows.short_name as source_short_name,
        primary_rows.address_raw as source_address,
        coalesce(
            primary_rows.source_system = 'history'
            and customers.customer_source = 'client_master'
            and (
                primary_rows.short_name <> customers.short_name
                or primary_rows.address <> customers.address
            ),
            false
        ) as client_details_differ,

        -- incremental watermark
        lineage.last_load_id

    from primary_rows
    inner join lineage on primary_rows.delivery_key = lineage.delivery_key
    left join totals on primary_rows.delivery_key = totals.delivery_key
    left join customers on primary_rows.client_code = customers.client_code

)

select * from final

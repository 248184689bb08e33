-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
{{ delivery_mart_config(
    primary_key=['delivery_key', 'product_code'],
    foreign_key='delivery_key', references='deliveries', on_delete='cascade'
) }}
{#- One row per delivery and product: the quantities of the row that records the items (the
    primary row where its layout has quantities, else the app twin's; incremental:
    macros/incremental/delivery_mart_config.sql). -#}
with

rows as (

    select * from {{ ref('int_delivery_rows_classified') }}
    where
        items_from_row
        {{ incremental_delivery_days(ref('int_delivery_days_to_rebuild')) }}

),

items as (

    select * from {{ ref('int_delivery_items_conformed') }}

),

final as (

    select
        rows.delivery_key,
        items.product_code,
        items.quantity,
        items.source_column,
        rows.source_system,
        rows.source_file,
        rows.source_sheet,
        rows.source_row,
        rows.client_code,
        rows.delivery_date,
        rows.last_load_id,
        case when items.product_kind = 'metered' then 'kg' else 'cylinder' end as unit
    from rows
    inner join items
        on
            rows.source_system = items.source_system
            and rows.source_file = items.source_file
            and rows.source_sheet = items.source_sheet
            and rows.source_row = items.source_row

)

select * from final

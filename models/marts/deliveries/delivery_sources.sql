-- depends_on: {{ ref('raw_layouts') }}
-- depends_on: {{ source('loader', 'sources') }}
-- depends_on: {{ source('loader', 'columns') }}
{{ delivery_mart_config(
    primary_key=['source_file', 'source_sheet', 'source_row'],
    foreign_key='delivery_key', references='deliveries', on_delete='cascade',
    indexes=[{'columns': ['delivery_key']}, {'columns': ['source_file', 'source_sheet']}]
) }}
{#- The bridge: every source row that is part of a delivery, and how (incremental:
    macros/incremental/delivery_mart_config.sql). -#}
with

rows as (

    select * from {{ ref('int_delivery_rows_classified') }}
    where
        delivery_key is not null
        {{ incremental_delivery_days(ref('int_delivery_days_to_rebuild')) }}

),

final as (

    select
        delivery_key,
        source_system,
        source_file,
        source_sheet,
        source_row,
        source_role,
        merge_rule,
        items_from_row,
        primary_source_file,
        primary_source_sheet,
        primary_source_row,
        app_delivery_id,
        client_code,
        delivery_date,
        last_load_id
    from rows

)

select * from final

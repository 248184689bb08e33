{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['client_code', 'delivery_date'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['client_code', 'delivery_date']},
            {'columns': ['delivery_key']}
        ],
        pre_hook=["{{ delete_delivery_days(ref('int_delivery_days_to_rebuild')) }}"],
        post_hook=[
            "{{ ensure_foreign_key(['delivery_key'], ref('deliveries'), ['delivery_key'], 'cascade') }}"
        ]
    )
}}
{#- The bridge: every source row that is part of a delivery, and how (incremental:
    macros/incremental_deliveries.sql). -#}
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

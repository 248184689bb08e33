-- Every delivery source row that could not become a delivery, with its reason and lineage.
-- The reasons are decided once, in int_delivery_rows_classified.
with

quarantined as (

    select * from {{ ref('int_delivery_rows_classified') }}
    where source_role = 'quarantined'

),

final as (

    select
        source_system,
        source_file,
        source_sheet,
        source_row,
        layout,
        quarantine_reason as reason,
        client_code_raw,
        delivery_date_raw,
        client_code,
        delivery_date,
        app_delivery_id,
        app_status,
        items_text as quantities,
        load_id
    from quarantined

)

select * from final

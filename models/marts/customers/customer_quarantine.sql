-- Every client source row that could not become a customer, with its reason and lineage.
-- The reasons are decided once, in the intermediate models.
with

master as (

    select * from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is not null

),

app as (

    select * from {{ ref('int_app_clients_matched') }}
    where quarantine_reason is not null

),

quarantined as (

    select
        'client_workbook' as source_system,
        source_file,
        source_sheet,
        source_row,
        client_code_raw,
        quarantine_reason as reason
    from master

    union all

    select
        'legacy_app' as source_system,
        source_file,
        source_table as source_sheet,
        source_row,
        client_code_raw,
        quarantine_reason as reason
    from app

)

select * from quarantined

-- Every client source row that could not become a customer, with its reason and lineage.
with

master as (

    select * from {{ ref('stg_client_workbook__clients') }}

),

master_ranked as (

    select
        *,
        row_number() over (partition by client_code order by source_row) as nth
    from master

),

app as (

    select * from {{ ref('stg_legacy_app__clients') }}

),

app_ranked as (

    select
        *,
        row_number() over (partition by client_code order by app_client_id) as nth
    from app
    where not is_test_client

),

master_codes as (

    select distinct client_code from master
    where client_code is not null

),

quarantined as (

    select
        'client_workbook' as source_system,
        source_file,
        source_sheet,
        source_row,
        client_code_raw,
        case
            when client_code is null then 'invalid_client_code'
            else 'duplicate_client_code'
        end as reason
    from master_ranked
    where client_code is null or nth > 1

    union all

    select
        'legacy_app' as source_system,
        source_file,
        source_table as source_sheet,
        source_row,
        client_code_raw,
        'test_client' as reason
    from app
    where is_test_client

    union all

    select
        'legacy_app' as source_system,
        app_ranked.source_file,
        app_ranked.source_table as source_sheet,
        app_ranked.source_row,
        app_ranked.client_code_raw,
        case
            when app_ranked.nth > 1 then 'duplicate_client_code'
            else 'unknown_client'
        end as reason
    from app_ranked
    left join master_codes on app_ranked.client_code = master_codes.client_code
    where app_ranked.nth > 1 or master_codes.client_code is null

)

select * from quarantined

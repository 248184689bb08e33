-- Every app client, with the reason it is not the app's record of a master customer (NULL:
-- it is one): test rows, codes the master lacks, and later rows of a repeated code.
with

app as (

    select * from {{ ref('stg_legacy_app__clients') }}

),

master_codes as (

    select distinct client_code
    from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is null

),

ranked as (

    select
        app.*,
        master_codes.client_code is not null as in_master,
        row_number() over (
            partition by app.client_code, app.is_test_client order by app.app_client_id
        ) as nth_of_code
    from app
    left join master_codes on app.client_code = master_codes.client_code

),

matched as (

    select
        *,
        case
            when is_test_client then 'test_client'
            when not in_master then 'unknown_client'
            when nth_of_code > 1 then 'duplicate_client_code'
        end as quarantine_reason
    from ranked

)

select * from matched

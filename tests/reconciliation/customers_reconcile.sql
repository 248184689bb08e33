{{
    config(meta={
        "rule_id": "R01",
        "rows_checked_in": ["stg_client_workbook__clients", "stg_legacy_app__clients"]
    })
}}
-- Every client source row is a customer or quarantined, exactly, per source: returns the
-- sources where the counts differ (none, when the migration lost nothing).
with

master as (

    select count(*) as source_rows from {{ ref('stg_client_workbook__clients') }}

),

app as (

    select count(*) as source_rows from {{ ref('stg_legacy_app__clients') }}

),

customers as (

    select
        count(*) as customers,
        count(app_client_id) as with_app_id
    from {{ ref('customers') }}

),

quarantine as (

    select
        count(*) filter (where source_system = 'client_workbook') as master_rows,
        count(*) filter (where source_system = 'legacy_app') as app_rows
    from {{ ref('customer_quarantine') }}

),

checks as (

    select
        'client_workbook' as source_system,
        master.source_rows,
        customers.customers + quarantine.master_rows as accounted_rows
    from master cross join customers cross join quarantine

    union all

    select
        'legacy_app' as source_system,
        app.source_rows,
        customers.with_app_id + quarantine.app_rows as accounted_rows
    from app cross join customers cross join quarantine

)

select * from checks
where source_rows <> accounted_rows

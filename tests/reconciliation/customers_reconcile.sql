{{
    config(meta={
        "rule_id": "R01",
        "rows_checked_in": ["stg_client_workbook__clients", "stg_legacy_app__clients"]
    })
}}
-- Every client source row is a customer or quarantined, exactly, per source, and every
-- valid client code of the delivery history is a customer: returns the sources where the
-- counts differ (none, when the migration lost nothing).
with

master as (

    select count(*) as source_rows from {{ ref('stg_client_workbook__clients') }}

),

app as (

    select count(*) as source_rows from {{ ref('stg_legacy_app__clients') }}

),

history_codes as (

    select count(distinct history.client_code) as source_rows
    from {{ ref('stg_delivery_history__deliveries') }} as history
    where
        history.client_code is not null
        and not exists (
            select 1 from {{ ref('stg_client_workbook__clients') }} as master
            where master.client_code = history.client_code
        )

),

customers as (

    select
        count(*) filter (where customer_source = 'client_master') as customers,
        count(*) filter (where customer_source = 'delivery_history') as history_customers,
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

    union all

    -- codes of the delivery history that the master lacks: one customer each
    select
        'delivery_history' as source_system,
        history_codes.source_rows,
        customers.history_customers as accounted_rows
    from history_codes cross join customers

)

select * from checks
where source_rows <> accounted_rows

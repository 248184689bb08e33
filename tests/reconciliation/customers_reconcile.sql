{{
    config(meta={
        "rule_id": "R01",
        "rows_checked_in": ["stg_client_workbook__clients", "stg_legacy_app__clients"]
    })
}}
-- Every client source row is a customer or quarantined, exactly, per source (file and
-- sheet, or the app's table), and every valid client code of each delivery history sheet
-- is a customer: returns the sources where the counts differ (none, when the migration
-- lost nothing), located at the source's header row.
with

customers as (

    select * from {{ ref('customers') }}

),

quarantine as (

    select * from {{ ref('customer_quarantine') }}

),

master_rows as (

    select
        source_file,
        source_sheet,
        count(*) as source_rows
    from {{ ref('stg_client_workbook__clients') }}
    group by source_file, source_sheet

),

master_accounted as (

    select
        source_file,
        source_sheet,
        count(*) as accounted_rows
    from (
        select
            source_file,
            source_sheet
        from customers
        where customer_source = 'client_master'
        union all
        select
            source_file,
            source_sheet
        from quarantine
        where source_system = 'client_workbook'
    ) as accounted
    group by source_file, source_sheet

),

app_customers as (

    select distinct app_client_id from customers
    where app_client_id is not null

),

app_rows as (

    select
        app.source_file,
        app.source_table as source_sheet,
        count(*) as source_rows,
        count(app_customers.app_client_id) as customers
    from {{ ref('stg_legacy_app__clients') }} as app
    -- a join, not an exists() per row: that scanned the customers once for every app client
    left join app_customers
        on app.app_client_id = app_customers.app_client_id
    group by app.source_file, app.source_table

),

app_quarantined as (

    select
        source_file,
        source_sheet,
        count(*) as quarantined
    from quarantine
    where source_system = 'legacy_app'
    group by source_file, source_sheet

),

-- each history sheet's valid codes, and those that are a customer
history_codes as (

    select
        history.source_file,
        history.source_sheet,
        count(*) as source_rows,
        count(customers.client_code) as accounted_rows
    from (
        select distinct
            source_file,
            source_sheet,
            client_code
        from {{ ref('stg_delivery_history__deliveries') }}
        where client_code is not null
    ) as history
    left join customers
        on history.client_code = customers.client_code
    group by history.source_file, history.source_sheet

),

checks as (

    select
        'client_workbook' as source_system,
        coalesce(master_rows.source_file, master_accounted.source_file) as source_file,
        coalesce(master_rows.source_sheet, master_accounted.source_sheet) as source_sheet,
        coalesce(master_rows.source_rows, 0) as source_rows,
        coalesce(master_accounted.accounted_rows, 0) as accounted_rows
    from master_rows
    full join master_accounted
        on
            master_rows.source_file = master_accounted.source_file
            and master_rows.source_sheet = master_accounted.source_sheet

    union all

    select
        'legacy_app' as source_system,
        app_rows.source_file,
        app_rows.source_sheet,
        app_rows.source_rows,
        app_rows.customers + coalesce(app_quarantined.quarantined, 0) as accounted_rows
    from app_rows
    left join app_quarantined
        on
            app_rows.source_file = app_quarantined.source_file
            and app_rows.source_sheet = app_quarantined.source_sheet

    union all

    select
        'delivery_history' as source_system,
        source_file,
        source_sheet,
        source_rows,
        accounted_rows
    from history_codes

)

select
    checks.*,
    coalesce(raw_table.header_row, 0) as source_row
from checks
left join {{ ref('raw_tables') }} as raw_table
    on
        checks.source_file = raw_table.source_file
        and checks.source_sheet = raw_table.source_sheet
where checks.source_rows is distinct from checks.accounted_rows

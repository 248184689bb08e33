{{ config(materialized='view') }}
-- Per source (file and sheet, or SQLite table): rows read, and what became of them: final
-- (a customer, or a delivery's primary row), merged (into another row's record) and
-- quarantined. difference = rows read - final - merged - quarantined: 0 when nothing is
-- lost. The on-run-end hook (macro record_validation) keeps a copy per run in
-- validation.reconciliation.
with

client_rows as (

    select
        'customer' as entity,
        source_file,
        source_sheet,
        count(*) as rows_read
    from {{ ref('stg_client_workbook__clients') }}
    group by source_file, source_sheet

),

app_client_rows as (

    select
        'customer' as entity,
        source_file,
        source_table as source_sheet,
        count(*) as rows_read
    from {{ ref('stg_legacy_app__clients') }}
    group by source_file, source_table

),

history_rows as (

    select
        'delivery' as entity,
        source_file,
        source_sheet,
        count(*) as rows_read
    from {{ ref('stg_delivery_history__deliveries') }}
    group by source_file, source_sheet

),

app_delivery_rows as (

    select
        'delivery' as entity,
        source_file,
        source_sheet,
        count(*) as rows_read
    from {{ ref('stg_legacy_app__deliveries') }}
    group by source_file, source_sheet

),

read_rows as (

    select * from client_rows
    union all
    select * from app_client_rows
    union all
    select * from history_rows
    union all
    select * from app_delivery_rows

),

outcomes as (

    select
        source_file,
        source_sheet,
        'final' as outcome,
        count(*) as n
    from {{ ref('customers') }}
    group by source_file, source_sheet

    union all

    -- an app client that is a master customer's record is merged into it
    select
        app.source_file,
        app.source_table as source_sheet,
        'merged' as outcome,
        count(*) as n
    from {{ ref('customers') }} as customers
    inner join {{ ref('stg_legacy_app__clients') }} as app
        on customers.app_client_id = app.app_client_id
    group by app.source_file, app.source_table

    union all

    select
        source_file,
        source_sheet,
        'quarantined' as outcome,
        count(*) as n
    from {{ ref('customer_quarantine') }}
    group by source_file, source_sheet

    union all

    select
        source_file,
        source_sheet,
        case when source_role = 'primary' then 'final' else 'merged' end as outcome,
        count(*) as n
    from {{ ref('delivery_sources') }}
    group by source_file, source_sheet, source_role

    union all

    select
        source_file,
        source_sheet,
        'quarantined' as outcome,
        count(*) as n
    from {{ ref('delivery_quarantine') }}
    group by source_file, source_sheet

),

reconciled as (

    select
        read_rows.entity,
        read_rows.source_file,
        read_rows.source_sheet,
        read_rows.rows_read,
        coalesce(sum(outcomes.n) filter (where outcomes.outcome = 'final'), 0) as final,
        coalesce(sum(outcomes.n) filter (where outcomes.outcome = 'merged'), 0) as merged,
        coalesce(sum(outcomes.n) filter (where outcomes.outcome = 'quarantined'), 0)
            as quarantined
    from read_rows
    left join outcomes
        on
            read_rows.source_file = outcomes.source_file
            and read_rows.source_sheet = outcomes.source_sheet
    group by read_rows.entity, read_rows.source_file, read_rows.source_sheet, read_rows.rows_read

)

select
    *,
    rows_read - final - merged - quarantined as difference
from reconciled

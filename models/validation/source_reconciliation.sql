{{ config(materialized='table') }}
-- Per loaded raw table that holds records (validation.raw_tables: every table of a migrated
-- layout, and every table with rows of no known layout), starting from what was loaded
-- (raw._sources), not from what staging chose to read: rows loaded, and what became of
-- them: final (a customer, or a delivery's primary row), merged (into another row's
-- record) and quarantined. difference = rows read - final - merged - quarantined: 0 when
-- nothing is lost; a table nobody reads keeps all its rows as the difference. Tables
-- declared not migrated are listed, with their reason, in validation.raw_tables. The
-- on-run-end hook (macro record_validation) keeps a copy per run in
-- validation.reconciliation.
with

read_rows as (

    -- the columns in the order of the reconciliation table
    select  -- noqa: ST06
        case
            when layout in ('client_master', 'app_clients') then 'customer'
            when layout in ('history_daily', 'history_transaction', 'app_deliveries')
                then 'delivery'
            else 'unrecognised'
        end as entity,
        source_file,
        source_sheet,
        raw_rows as rows_read
    -- the catalogue match itself, not validation.raw_tables: when rule R04 fails on that
    -- model, dbt skips its children, and this view must still show the loss
    from (
        {{ raw_layout_matched(ref('stg_loader__raw_tables'), ref('raw_layouts')) }}
    ) as catalogued
    where role is distinct from 'not_migrated' and (layout is not null or raw_rows > 0)

),

-- materialized: counted once, not again for each raw table the join looks it up for
outcomes as materialized (

    -- a master row or an app client of its own is a customer (a customer the delivery
    -- history describes is no row of its own: its rows are deliveries)
    select
        source_file,
        source_sheet,
        'final' as outcome,
        count(*) as n
    from {{ ref('customers') }}
    where customer_source in ('client_master', 'legacy_app')
    group by source_file, source_sheet

    union all

    -- an app client that is another source's customer is merged into it
    select
        app.source_file,
        app.source_table as source_sheet,
        'merged' as outcome,
        count(*) as n
    from {{ ref('customers') }} as customers
    inner join {{ ref('stg_legacy_app__clients') }} as app
        on customers.app_client_id = app.app_client_id
    where customers.customer_source <> 'legacy_app'
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

{{
    config(meta={
        "rule_id": "R02",
        "rows_checked_in": ["stg_delivery_history__deliveries", "stg_legacy_app__deliveries"]
    })
}}
-- Every delivery source row is accounted for, exactly, per source (file and sheet, or the
-- app's table): rows loaded in raw (validation.raw_tables, every table of a delivery
-- layout) = rows of a delivery (primary or merged, delivery_sources) + rows quarantined.
-- And, where the layout records quantities, every quantity column's source sum = its sum
-- over the deliveries' items (by the row each item comes from) + the rows whose
-- quantities are not a delivery's items (merged or quarantined). Returns the sources and
-- columns that do not reconcile (none, when the migration lost nothing).
with

history as (

    select * from {{ ref('stg_delivery_history__deliveries') }}

),

app as (

    select * from {{ ref('stg_legacy_app__deliveries') }}

),

bridge as (

    select * from {{ ref('delivery_sources') }}

),

quarantine as (

    select * from {{ ref('delivery_quarantine') }}

),

source_rows as (

    select
        source_file,
        source_sheet,
        raw_rows as source_rows
    from {{ ref('raw_tables') }}
    where layout in ('history_daily', 'history_transaction', 'app_deliveries')

),

accounted_rows as (

    select
        source_file,
        source_sheet,
        count(*) as accounted_rows
    from (
        select
            source_file,
            source_sheet
        from bridge
        union all
        select
            source_file,
            source_sheet
        from quarantine
    ) as accounted
    group by source_file, source_sheet

),

row_checks as (

    select
        coalesce(source_rows.source_file, accounted_rows.source_file) as source_file,
        coalesce(source_rows.source_sheet, accounted_rows.source_sheet) as source_sheet,
        'rows' as measure,
        coalesce(source_rows.source_rows, 0) as source_value,
        coalesce(accounted_rows.accounted_rows, 0) as accounted_value
    from source_rows
    full outer join accounted_rows
        on
            source_rows.source_file = accounted_rows.source_file
            and source_rows.source_sheet = accounted_rows.source_sheet

),

-- quantities straight from staging, by source column
source_sums as (

    select
        history.source_file,
        history.source_sheet,
        cells.source_column,
        sum(cells.quantity) as quantity
    from history
    cross join {{ quantity_cells('history', history_product_columns()) }}
    -- only the layouts that record quantities have any (the 5-column history has none)
    where history.items_recorded
    group by history.source_file, history.source_sheet, cells.source_column

    union all

    select
        app.source_file,
        app.source_sheet,
        cells.source_column,
        sum(cells.quantity) as quantity
    from app
    cross join {{ quantity_cells('app', app_size_columns().values()) }}
    group by app.source_file, app.source_sheet, cells.source_column

),

-- the same quantities as the final tables hold them
delivered as (

    select
        items.source_file,
        items.source_sheet,
        items.source_column,
        items.quantity
    from {{ ref('delivery_items') }} as items
    inner join {{ ref('deliveries') }} as deliveries
        on items.delivery_key = deliveries.delivery_key

),

-- the rows whose quantities are no delivery's items: merged into a delivery whose items
-- come from another row, or quarantined (a join, not exists: a correlated subquery over the
-- bridge CTE runs once per item row)
set_aside_rows as (

    select
        source_file,
        source_sheet,
        source_row
    from bridge
    where not items_from_row

    union all

    select
        source_file,
        source_sheet,
        source_row
    from quarantine

),

set_aside as (

    select
        conformed.source_file,
        conformed.source_sheet,
        conformed.source_column,
        conformed.quantity
    from {{ ref('int_delivery_items_conformed') }} as conformed
    inner join set_aside_rows
        on
            conformed.source_file = set_aside_rows.source_file
            and conformed.source_sheet = set_aside_rows.source_sheet
            and conformed.source_row = set_aside_rows.source_row

),

accounted_sums as (

    select
        source_file,
        source_sheet,
        source_column,
        sum(quantity) as quantity
    from (
        select * from delivered
        union all
        select * from set_aside
    ) as accounted
    group by source_file, source_sheet, source_column

),

sum_checks as (

    select
        source_sums.source_file,
        source_sums.source_sheet,
        'sum of ' || source_sums.source_column as measure,
        coalesce(source_sums.quantity, 0) as source_value,
        coalesce(accounted_sums.quantity, 0) as accounted_value
    from source_sums
    left join accounted_sums
        on
            source_sums.source_file = accounted_sums.source_file
            and source_sums.source_sheet = accounted_sums.source_sheet
            and source_sums.source_column = accounted_sums.source_column

),

checks as (

    select * from row_checks
    union all
    select * from sum_checks

)

-- located at the source's header row
select
    checks.*,
    coalesce(raw_table.header_row, 0) as source_row
from checks
left join {{ ref('raw_tables') }} as raw_table
    on
        checks.source_file = raw_table.source_file
        and checks.source_sheet = raw_table.source_sheet
where checks.source_value <> checks.accounted_value

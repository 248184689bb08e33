{{
    config(meta={
        "rule_id": "R03",
        "rows_checked_in": ["stg_delivery_history__deliveries", "stg_legacy_app__deliveries"]
    })
}}
-- The go/no-go gate on orphans: in each delivery source (file and sheet, or the app's
-- table), the rows whose client is not in the client master (quarantine reason
-- unknown_client) are at most var('max_orphan_rate') of its rows, or at most
-- var('orphan_rows_allowed') rows, whichever is more (one orphan in a 40-row daily file is
-- not a wrong file). More means the file does not belong with this client master (another
-- branch's export, a truncated client list), and `luckygas migrate` stops before the swap.
-- Returns the sources above the threshold.
with

sources as (

    select
        source_file,
        source_sheet,
        count(*) as rows_read
    from {{ ref('stg_delivery_history__deliveries') }}
    group by source_file, source_sheet
    union all
    select
        source_file,
        source_sheet,
        count(*) as rows_read
    from {{ ref('stg_legacy_app__deliveries') }}
    group by source_file, source_sheet

),

orphans as (

    select
        source_file,
        source_sheet,
        count(*) as orphan_rows
    from {{ ref('delivery_quarantine') }}
    where reason = 'unknown_client'
    group by source_file, source_sheet

),

rates as (

    select
        sources.source_file,
        sources.source_sheet,
        sources.rows_read,
        coalesce(orphans.orphan_rows, 0) as orphan_rows,
        round(coalesce(orphans.orphan_rows, 0)::numeric / nullif(sources.rows_read, 0), 4)
            as orphan_rate
    from sources
    left join orphans
        on
            sources.source_file = orphans.source_file
            and sources.source_sheet = orphans.source_sheet

)

-- located at the source's header row
select
    rates.source_file,
    rates.source_sheet,
    coalesce(raw_table.header_row, 0) as source_row,
    rates.rows_read,
    rates.orphan_rows,
    rates.orphan_rate,
    {{ var('max_orphan_rate') }} as max_orphan_rate
from rates
left join {{ ref('raw_tables') }} as raw_table
    on
        rates.source_file = raw_table.source_file
        and rates.source_sheet = raw_table.source_sheet
where
    rates.orphan_rate > {{ var('max_orphan_rate') }}
    and rates.orphan_rows > {{ var('orphan_rows_allowed') }}
